-- 01_schemas.sql: the schemas, and the one extension sessiongate needs.
--
-- Runs as the migrating (admin) user: creating schemas needs CREATE on the
-- database, which the owner role does not have.

-- auth: users, sessions and the functions that resolve them. Private: HTTP
-- never reaches it directly, and no request role may read its tables.
CREATE SCHEMA IF NOT EXISTS auth;
ALTER SCHEMA auth OWNER TO sessiongate_owner;
COMMENT ON SCHEMA auth IS 'sessiongate: users, sessions and the authenticate() contract (private)';

-- api: what HTTP may reach. Views and functions only; the data API exposes it.
CREATE SCHEMA IF NOT EXISTS api;
ALTER SCHEMA api OWNER TO sessiongate_owner;
COMMENT ON SCHEMA api IS 'sessiongate: the exposed schema';

-- app: the demo application's tables, behind Row Level Security.
CREATE SCHEMA IF NOT EXISTS app;
ALTER SCHEMA app OWNER TO sessiongate_owner;
COMMENT ON SCHEMA app IS 'sessiongate demo application (private tables)';

-- extensions: citext lives here rather than in public, which holds nothing of
-- ours. If citext is already installed in another schema we use that copy.
CREATE SCHEMA IF NOT EXISTS extensions;
ALTER SCHEMA extensions OWNER TO sessiongate_owner;
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;

-- Nobody but the owner creates objects anywhere we own, and PUBLIC may not
-- create in public either (the PostgreSQL 15 default, made explicit for 14).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA auth, api, app, extensions FROM PUBLIC;

-- Functions are executable by PUBLIC unless revoked; make the owner's new
-- functions private by default so each grant below is deliberate.
ALTER DEFAULT PRIVILEGES FOR ROLE sessiongate_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Request roles may resolve names in these schemas; what they may touch is
-- granted object by object.
GRANT USAGE ON SCHEMA auth, api, extensions TO anonymous, webuser, admin;
GRANT USAGE ON SCHEMA auth TO authenticator;
GRANT USAGE ON SCHEMA extensions TO authenticator;
