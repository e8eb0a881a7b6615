-- 00_roles.sql: the database roles sessiongate switches between.
--
-- Runs as the migrating (admin) user, before anything else. Every statement is
-- idempotent so the file can be re-applied to a cluster that already has the
-- roles (several databases on one cluster share them).

-- The owner of every schema, table and SECURITY DEFINER function. It cannot log
-- in and is not a superuser, so Row Level Security applies to it (tables use
-- FORCE ROW LEVEL SECURITY): a view it owns cannot leak rows past a policy.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sessiongate_owner') THEN
    CREATE ROLE sessiongate_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;

  -- The only role the service connects as. NOINHERIT: it holds no privilege of
  -- its own on data; it must SET ROLE into one of the roles below first.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;

  -- Requests without a valid session.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anonymous') THEN
    CREATE ROLE anonymous NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;

  -- The default role of a signed-in user.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'webuser') THEN
    CREATE ROLE webuser NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;

  -- Signed-in administrators. Deliberately not a member of webuser's privileges
  -- by inheritance games: grants are written out per object.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin') THEN
    CREATE ROLE admin NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
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
