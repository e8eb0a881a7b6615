-- 04_authenticate.sql: a session becomes a database role, transaction-locally.
--
-- Runs as sessiongate_owner. sessiongate calls auth.authenticate(token_hash,
-- ...) as the first statement of every request transaction; PostgREST calls
-- auth.authenticate() (no arguments) as its db-pre-request. Both leave the
-- same state behind, and all of it is set with is_local = true, so it ends
-- with the transaction: a pooled connection (or PgBouncer in transaction mode)
-- carries nothing into the next request.
--
-- These functions are SECURITY INVOKER on purpose: PostgreSQL forbids
-- SET ROLE inside a SECURITY DEFINER function, and the membership check must
-- be made for the real session user. The privileged read is confined to
-- auth.resolve_session().
--
-- They run on every request (auth.user_id() on every row a policy checks),
-- so they carry no SET search_path clause: a function with one is never
-- inlined and pays a settings save and restore per call. They gain no
-- privilege from their caller's search_path either, and every name in them,
-- type names included, is schema-qualified (pg_catalog.*), so none can be
-- shadowed: not by an object in a schema on the path, nor by a temporary
-- table, which PostgreSQL looks up first for a type name unless the
-- search_path lists pg_temp.

-- Before revision 0006 authenticate() took the hash alone, and before 0008
-- the hash and copy_role_limits. CREATE OR REPLACE cannot add a parameter,
-- and old and new would make every shorter call ambiguous, so the old ones
-- go first (their grants with them: they are re-granted below).
DROP FUNCTION IF EXISTS auth.authenticate(bytea);
DROP FUNCTION IF EXISTS auth.authenticate(bytea, boolean);

-- The caller's user id, for policies. NULL when there is no signed-in user,
-- including when the setting is missing or empty, so a policy comparing
-- against it matches no row rather than erroring or matching everything.
CREATE OR REPLACE FUNCTION auth.user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT nullif(pg_catalog.current_setting('auth.user_id', true), '')::pg_catalog.uuid
$$;
COMMENT ON FUNCTION auth.user_id() IS
  'The signed-in user''s id for this transaction, or NULL (fail closed)';

-- The role for requests without a valid session when the caller does not
-- pass one (PostgREST's form): sessiongate.anonymous_role as configured for
-- the connecting role with ALTER ROLE ... SET or ALTER DATABASE ... SET,
-- with login's precedence (role and database, then role, then database),
-- else "anonymous". Read from the catalog, not from the live setting: any
-- role can overwrite a custom setting for the rest of its connection, and
-- one request could then make every later anonymous request on that
-- connection another role.
CREATE OR REPLACE FUNCTION auth.anonymous_role() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(
    (SELECT nullif(pg_catalog.substr(cfg, pg_catalog.strpos(cfg, '=') + 1), '')
     FROM pg_catalog.pg_db_role_setting s
     CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) cfg
     WHERE s.setrole IN (0, pg_catalog.to_regrole(pg_catalog.quote_ident(session_user)))
       AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                 WHERE d.datname = pg_catalog.current_database()))
       AND pg_catalog.split_part(cfg, '=', 1) = 'sessiongate.anonymous_role'
     ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC
     LIMIT 1),
    'anonymous')::pg_catalog.name
$$;

-- Role-level limits. PostgreSQL applies ALTER ROLE ... SET only at login,
-- never on SET ROLE, so each request transaction must set the ones that
-- bound a request's cost (statement_timeout, lock_timeout) itself. The
-- values live in one place (sql/07_hardening.sql sets them with ALTER ROLE),
-- which is also where PostgREST 11.1+ reads them for its impersonated roles.
--
-- One role's limits as login would apply them; the two functions below are
-- its only callers, so the copy made per request and the one cached by the
-- service cannot disagree. A plain SQL function, so it is inlined.
CREATE OR REPLACE FUNCTION auth.role_limit_settings(target oid)
RETURNS TABLE (name text, value text)
LANGUAGE sql STABLE
AS $$
  SELECT DISTINCT ON (l.name) l.name, l.value
  FROM pg_catalog.pg_db_role_setting s
  CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) cfg
  CROSS JOIN LATERAL (SELECT pg_catalog.split_part(cfg, '=', 1) AS name,
                             pg_catalog.substr(cfg, pg_catalog.strpos(cfg, '=') + 1) AS value) l
  -- The sub-select runs only when an OR reaches it, i.e. for a row that
  -- names a database: reading pg_database costs more than everything else.
  WHERE s.setrole = target
    AND (s.setdatabase = 0
         OR s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d
                             WHERE d.datname = pg_catalog.current_database()))
    AND l.name IN ('statement_timeout', 'lock_timeout')
  -- A database-specific setting wins over the role-wide one, as at login.
  ORDER BY l.name, s.setdatabase DESC
$$;

-- The request role's limits, copied into the transaction (authenticate()).
CREATE OR REPLACE FUNCTION auth.apply_role_limits(target name) RETURNS void
LANGUAGE sql VOLATILE
AS $$
  -- to_regrole reads the role cache; pg_roles is a view with joins.
  -- nullif: before PostgreSQL 16, to_regrole raises for an empty name.
  SELECT pg_catalog.count(pg_catalog.set_config(l.name, l.value, true))
  FROM auth.role_limit_settings(pg_catalog.to_regrole(pg_catalog.quote_ident(nullif(target, '')))) l
$$;

-- The limits of every role the session user may switch into (the roles
-- authenticate() can resolve to): one row per role and setting. sessiongate
-- reads them with its schema cache and sends them with each request's
-- settings, so the catalog is not read on every request (it was the
-- costliest part of authenticate()). PostgREST 11.1+ also caches role
-- settings; both re-read them on NOTIFY pgrst, 'reload config' (sessiongate
-- also on 'reload schema').
CREATE OR REPLACE FUNCTION auth.role_limits()
RETURNS TABLE (role name, name text, value text)
LANGUAGE sql STABLE
AS $$
  SELECT r.rolname, l.name, l.value
  FROM pg_catalog.pg_roles r
  CROSS JOIN LATERAL auth.role_limit_settings(r.oid) l
  WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
  ORDER BY r.rolname, l.name
$$;

-- copy_role_limits: false when the caller sets the role's limits itself in
-- the same statement (sessiongate's data requests, from auth.role_limits()).
-- Every other caller keeps the default and gets them copied here.
--
-- anonymous and pooled: the anonymous role, and whether this is a pooled
-- sessiongate connection, as the service knows them; NULL reads the
-- settings sessiongate.anonymous_role and sessiongate.pooled instead (the
-- PostgREST form, and any other caller). The service passes both, because
-- any role can overwrite a custom setting for the rest of its connection
-- (set_config(..., false) in an exposed function): a setting would let one
-- request turn every later anonymous request on that connection into
-- another role, or switch off the leftover-role check below.
CREATE OR REPLACE FUNCTION auth.authenticate(
  token_hash bytea, copy_role_limits boolean DEFAULT true,
  anonymous name DEFAULT NULL, pooled boolean DEFAULT NULL)
RETURNS TABLE (role name, user_id uuid, session_id uuid, last_seen_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  live pg_catalog.record;
  target pg_catalog.name;
BEGIN
  -- A connection that sessiongate pools must start every request as itself.
  -- If an earlier transaction left a session-level role behind (SQL that ran
  -- set_config('role', ..., false) or SET ROLE and committed), drop it here,
  -- so it can never carry into this request or the service's own queries.
  -- (PostgREST runs this after its own SET LOCAL ROLE, hence the marker.)
  IF coalesce(authenticate.pooled, pg_catalog.current_setting('sessiongate.pooled', true) = 'on')
     AND current_user <> session_user THEN
    PERFORM pg_catalog.set_config('role', 'none', false);
  END IF;

  -- A NULL hash (no cookie, or one whose signature failed) skips the lookup.
  SELECT * INTO live FROM auth.resolve_session(token_hash) WHERE token_hash IS NOT NULL;

  IF live.session_id IS NULL THEN
    -- No session, or an expired, revoked or disabled one: anonymous, with
    -- every identity setting present but empty.
    target := coalesce(authenticate.anonymous, auth.anonymous_role());
    IF NOT pg_catalog.pg_has_role(session_user, target, 'MEMBER')
       OR pg_catalog.pg_has_role(target, session_user, 'MEMBER') THEN
      RAISE EXCEPTION 'anonymous role "%" is not permitted', target
        USING ERRCODE = 'insufficient_privilege',
              HINT = pg_catalog.format('GRANT %I TO %I.', target, session_user);
    END IF;
  ELSE
    -- Never trust the stored role: it must be one the connecting role may
    -- switch into, and neither that role itself nor one holding its
    -- powers (a member of it), which would reach every account function.
    -- session_user, not current_user: under PostgREST the pre-request runs
    -- after SET ROLE to the anonymous role.
    target := live.role;
    IF NOT pg_catalog.pg_has_role(session_user, target, 'MEMBER')
       OR pg_catalog.pg_has_role(target, session_user, 'MEMBER') THEN
      RAISE EXCEPTION 'session role "%" is not permitted', target
        USING ERRCODE = 'insufficient_privilege',
              HINT = pg_catalog.format('GRANT %I TO %I, or change the user''s role.', target, session_user);
    END IF;
  END IF;

  -- Limits first: after the switch the function runs as the request role.
  IF copy_role_limits THEN
    PERFORM auth.apply_role_limits(target);
  END IF;
  -- One statement for every setting: each statement a plpgsql function runs
  -- costs a round through the executor, and this runs on every request.
  -- The claim names follow PostgREST (request.jwt.claims, with role and sub)
  -- and PostGraphile (jwt.claims.*), so policies written for either work.
  -- The service checks at the end of each request that none of these was
  -- overwritten (app/role_guard.py lists them too: keep the two in step).
  PERFORM pg_catalog.set_config('role', target, true),
          pg_catalog.set_config('auth.user_id', coalesce(live.user_id::pg_catalog.text, ''), true),
          pg_catalog.set_config('auth.session_id', coalesce(live.session_id::pg_catalog.text, ''), true),
          pg_catalog.set_config('request.jwt.claims',
            CASE WHEN live.session_id IS NULL THEN '{}'
                 ELSE pg_catalog.jsonb_build_object(
                        'role', live.role,
                        'sub', live.user_id,
                        'user_id', live.user_id,
                        'email', live.email,
                        'session_id', live.session_id)::pg_catalog.text
            END, true),
          pg_catalog.set_config('jwt.claims.role', target, true),
          pg_catalog.set_config('jwt.claims.user_id', coalesce(live.user_id::pg_catalog.text, ''), true),
          pg_catalog.set_config('jwt.claims.email', coalesce(live.email, ''), true),
          pg_catalog.set_config('jwt.claims.session_id', coalesce(live.session_id::pg_catalog.text, ''), true);

  -- RETURN NEXT from the output variables: no query, unlike RETURN QUERY.
  role := target;
  user_id := live.user_id;
  session_id := live.session_id;
  last_seen_at := live.last_seen_at;
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION auth.authenticate(bytea, boolean, name, boolean) IS
  'Resolve sha256(session secret) into role, auth.user_id and request.jwt.claims, transaction-locally';

-- The session secret from a cookie value as sessiongate writes it:
-- base64url(secret) "." signature. The signature is itsdangerous's and is
-- checked by the service; the database does not need it, because only the
-- hash of a valid 256-bit secret finds a row.
CREATE OR REPLACE FUNCTION auth.cookie_token_hash(cookie text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
  encoded pg_catalog.text := pg_catalog.split_part(cookie, '.', 1);
BEGIN
  IF encoded !~ '^[A-Za-z0-9_-]{43}$' THEN
    RETURN NULL;
  END IF;
  RETURN pg_catalog.sha256(pg_catalog.decode(pg_catalog.translate(encoded, '-_', '+/') || '=', 'base64'));
END
$$;

-- PostgREST's db-pre-request form. PostgREST 9+ puts the request's cookies
-- in request.cookies as a JSON object; older versions used one setting per
-- cookie, request.cookie.<name>. Without a sessiongate cookie it changes
-- nothing, so a request PostgREST already authenticated by JWT keeps its role.
CREATE OR REPLACE FUNCTION auth.authenticate() RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  cookies pg_catalog.jsonb := nullif(pg_catalog.current_setting('request.cookies', true), '')::pg_catalog.jsonb;
  cookie pg_catalog.text := coalesce(
    cookies ->> '__Host-sessiongate',
    cookies ->> 'sessiongate',
    nullif(pg_catalog.current_setting('request.cookie.__Host-sessiongate', true), ''),
    nullif(pg_catalog.current_setting('request.cookie.sessiongate', true), ''));
BEGIN
  IF cookie IS NULL THEN
    RETURN;
  END IF;
  PERFORM auth.authenticate(auth.cookie_token_hash(cookie));
END
$$;
COMMENT ON FUNCTION auth.authenticate() IS
  'PostgREST db-pre-request: authenticate from the sessiongate cookie, if there is one';

REVOKE ALL ON FUNCTION auth.user_id(), auth.anonymous_role(), auth.authenticate(bytea, boolean, name, boolean),
  auth.authenticate(), auth.cookie_token_hash(text), auth.role_limit_settings(oid), auth.apply_role_limits(name),
  auth.role_limits() FROM PUBLIC;
-- Every request role: under PostgREST, authenticate() runs as the role a JWT
-- gave the request, which may be any of them.
GRANT EXECUTE ON FUNCTION auth.role_limit_settings(oid), auth.apply_role_limits(name)
  TO authenticator, anonymous, webuser, admin;
GRANT EXECUTE ON FUNCTION auth.role_limits() TO authenticator;
-- Under PostgREST the pre-request runs as whatever role the request already
-- has (the anonymous role, or a JWT's role), so every request role may call
-- it. That grants nothing new: switching into a session needs the hash of its
-- 256-bit secret, which only a holder of the cookie can produce.
GRANT EXECUTE ON FUNCTION auth.authenticate(bytea, boolean, name, boolean), auth.authenticate(),
  auth.cookie_token_hash(text),
  auth.anonymous_role()
  TO authenticator, anonymous, webuser, admin;
GRANT EXECUTE ON FUNCTION auth.user_id() TO anonymous, webuser, admin, sessiongate_owner;
