-- 02_users.sql: accounts.
--
-- Runs as sessiongate_owner. No request role has any privilege on this table:
-- it is read and written only through the SECURITY DEFINER functions in
-- 05_accounts.sql, which the service calls as authenticator.

-- An e-mail address compared case-insensitively. The service validates the
-- syntax properly; the CHECK is a last line of defence against junk that
-- bypassed it (the CLI, a hand-written INSERT).
DO $$
DECLARE
  citext_schema name := (
    SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'citext');
BEGIN
  IF NOT EXISTS (SELECT FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'auth' AND t.typname = 'email_address') THEN
    EXECUTE format(
      'CREATE DOMAIN auth.email_address AS %I.citext
         CHECK (length(VALUE) BETWEEN 3 AND 254 AND VALUE ~ %L)',
      citext_schema, '^[^@\s]+@[^@\s]+$');
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS auth.users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         auth.email_address NOT NULL UNIQUE,
  -- A PHC string (argon2id), or a legacy bcrypt hash imported from a
  -- PostgREST basic_auth schema; re-hashed to argon2id at the next login.
  password_hash text NOT NULL CHECK (password_hash ~ '^\$'),
  role          name NOT NULL DEFAULT 'webuser',
  verified      boolean NOT NULL DEFAULT false,
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.users IS 'sessiongate accounts; reached only through auth.* functions';

ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
-- No policy: with RLS enabled and no policy, nobody but the owner (and a
-- superuser) sees a row. Not FORCEd, because the owner's SECURITY DEFINER
-- functions are the one sanctioned way in.

-- A user's role must be one authenticator may switch into; checked again at
-- every request by auth.authenticate(), because grants can change later.
CREATE OR REPLACE FUNCTION auth.check_user_role() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = NEW.role) THEN
    RAISE EXCEPTION 'role "%" does not exist', NEW.role
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Create the role first, or use webuser.';
  END IF;
  IF NOT pg_has_role('authenticator', NEW.role, 'MEMBER') THEN
    RAISE EXCEPTION 'authenticator is not a member of role "%"', NEW.role
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'GRANT the role to authenticator before assigning it to users.';
  END IF;
  -- authenticator itself, or a role holding its powers, could call every
  -- account function (auth.authenticate() refuses them too).
  IF pg_has_role(NEW.role, 'authenticator', 'MEMBER') THEN
    RAISE EXCEPTION 'role "%" has the service''s own privileges', NEW.role
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Give users a request role such as webuser or admin.';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS users_check_role ON auth.users;
CREATE TRIGGER users_check_role BEFORE INSERT OR UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION auth.check_user_role();
