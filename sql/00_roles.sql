-- 00_roles.sql: the database roles sessiongate switches between.
--
-- Runs as the migrating (admin) user, before anything else. Every statement is
-- idempotent so the file can be re-applied to a cluster that already has the
-- roles (several databases on one cluster share them).

-- sessiongate_owner owns every schema, table and SECURITY DEFINER function.
-- It cannot log in and is not a superuser, so Row Level Security applies to
-- it (tables use FORCE ROW LEVEL SECURITY): a view it owns cannot leak rows
-- past a policy.
--
-- authenticator is the only role the service connects as. NOINHERIT: it holds
-- no privilege of its own on data; it must SET ROLE into one of the request
-- roles first: anonymous (no valid session), webuser (the default signed-in
-- role) and admin.
--
-- Roles are cluster-wide, and two databases may be migrated at once (tests
-- do), so each CREATE tolerates losing the race to a concurrent one.
DO $$
DECLARE
  wanted text[][] := ARRAY[
    ['sessiongate_owner', 'NOLOGIN NOSUPERUSER NOBYPASSRLS'],
    ['authenticator', 'LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'],
    ['anonymous', 'NOLOGIN NOSUPERUSER NOBYPASSRLS'],
    ['webuser', 'NOLOGIN NOSUPERUSER NOBYPASSRLS'],
    ['admin', 'NOLOGIN NOSUPERUSER NOBYPASSRLS']];
  i int;
BEGIN
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = wanted[i][1]);
    BEGIN
      EXECUTE format('CREATE ROLE %I %s', wanted[i][1], wanted[i][2]);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created meanwhile by a concurrent migration
    END;
  END LOOP;
END
$$;

-- Re-assert the attributes that matter for safety even when the roles existed
-- before: an operator who created "authenticator" by hand with BYPASSRLS would
-- otherwise silently disable every policy.
ALTER ROLE authenticator LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS;
ALTER ROLE anonymous NOLOGIN NOBYPASSRLS;
ALTER ROLE webuser NOLOGIN NOBYPASSRLS;
ALTER ROLE admin NOLOGIN NOBYPASSRLS;
ALTER ROLE sessiongate_owner NOLOGIN NOBYPASSRLS;

-- authenticator may switch into exactly these roles, and auth.authenticate()
-- refuses any role it is not a member of.
GRANT anonymous, webuser, admin TO authenticator;

-- The migrating user becomes the owner role while it creates objects.
DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'sessiongate_owner', 'MEMBER') THEN
    EXECUTE format('GRANT sessiongate_owner TO %I', current_user);
  END IF;
END
$$;
