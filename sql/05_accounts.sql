-- 05_accounts.sql: the narrow door into auth.users.
--
-- Runs as sessiongate_owner. The service hashes passwords (argon2id, in
-- Python, where the parameters are tunable and the work runs off the event
-- loop); these functions only store and fetch hashes. Each is SECURITY
-- DEFINER with a fixed search_path and is granted to authenticator alone:
-- no request role can read a password hash or create a user.

-- The public face of a user: everything except the password hash.
CREATE OR REPLACE VIEW auth.user_profiles AS
  SELECT id, email::text AS email, role, verified, disabled, created_at, updated_at
  FROM auth.users;
REVOKE ALL ON auth.user_profiles FROM PUBLIC;

CREATE OR REPLACE FUNCTION auth.create_user(
  email text, password_hash text, role name DEFAULT 'webuser', verified boolean DEFAULT false)
RETURNS SETOF auth.user_profiles
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO auth.users (email, password_hash, role, verified)
  VALUES (create_user.email, create_user.password_hash, create_user.role, create_user.verified)
  RETURNING id, email::text, role, verified, disabled, created_at, updated_at
$$;

-- E-mail lookups. auth.email_address is citext, but every function here runs
-- with search_path = pg_catalog, where "=" on citext resolves to text's
-- case-sensitive operator (citext's own lives in its extension's schema).
-- So lookups compare lower(email::text), which is what citext compares, and
-- this index makes that one probe. The unique constraint stays citext's.
CREATE INDEX IF NOT EXISTS users_email_lower_idx ON auth.users (lower(email::text));

-- What login needs to check a password. Returns no row for an unknown e-mail;
-- the service then hashes anyway, so both cases cost the same.
CREATE OR REPLACE FUNCTION auth.login_lookup(email text)
RETURNS TABLE (user_id uuid, password_hash text, disabled boolean, verified boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT u.id, u.password_hash, u.disabled, u.verified
  FROM auth.users u
  WHERE lower(u.email::text) = lower(login_lookup.email)
$$;

-- Replace a hash after a successful login with an outdated scheme (bcrypt to
-- argon2id, or older argon2 parameters). Only if the hash is still the one
-- the login checked, so a concurrent password change is never overwritten.
CREATE OR REPLACE FUNCTION auth.upgrade_password_hash(user_id uuid, old_hash text, new_hash text)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH changed AS (
    UPDATE auth.users u SET password_hash = new_hash
    WHERE u.id = upgrade_password_hash.user_id AND u.password_hash = old_hash
    RETURNING 1)
  SELECT EXISTS (SELECT FROM changed)
$$;

CREATE OR REPLACE FUNCTION auth.get_user(user_id uuid)
RETURNS SETOF auth.user_profiles
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM auth.user_profiles p WHERE p.id = get_user.user_id
$$;

CREATE OR REPLACE FUNCTION auth.list_users()
RETURNS SETOF auth.user_profiles
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM auth.user_profiles ORDER BY created_at, email
$$;

REVOKE ALL ON FUNCTION
  auth.create_user(text, text, name, boolean),
  auth.login_lookup(text),
  auth.upgrade_password_hash(uuid, text, text),
  auth.get_user(uuid),
  auth.list_users()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  auth.create_user(text, text, name, boolean),
  auth.login_lookup(text),
  auth.upgrade_password_hash(uuid, text, text),
  auth.get_user(uuid),
  auth.list_users()
TO authenticator;
