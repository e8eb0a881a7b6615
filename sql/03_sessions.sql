-- 03_sessions.sql: server-side sessions and their lifecycle.
--
-- Runs as sessiongate_owner. The browser holds a 32-byte random secret (signed,
-- in an HttpOnly cookie); the table holds only sha256(secret), so a copy of the
-- table does not let anyone impersonate a user. The public uuid names a session
-- for listing and revoking without revealing anything that authenticates.

CREATE TABLE IF NOT EXISTS auth.sessions (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash      bytea NOT NULL CHECK (octet_length(token_hash) = 32),
  user_id         uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz NOT NULL DEFAULT now(),
  -- Sliding: pushed forward by auth.touch_session(), at most once per interval.
  idle_expires_at timestamptz NOT NULL,
  -- Fixed at issue; neither activity nor a refresh extends it.
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz,
  ip              inet,
  user_agent      text CHECK (length(user_agent) <= 512)
);
COMMENT ON TABLE auth.sessions IS 'sessiongate sessions; token_hash = sha256(cookie secret)';

-- authenticate(): one unique index probe per request.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_token_hash_key ON auth.sessions (token_hash);
-- Listing and revoking a user's sessions.
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON auth.sessions (user_id);
-- The purge job: whichever expiry comes first.
CREATE INDEX IF NOT EXISTS sessions_ends_at_idx
  ON auth.sessions ((least(idle_expires_at, expires_at)));

ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;

-- A live session: not revoked, neither expiry passed, its user enabled.
-- The one definition every function below relies on.
--
-- It runs on every request, and it is two unique-key probes (the token hash,
-- then the user's id). While the tables are small the planner prefers to read
-- them whole and hash-join them, which costs more than the probes it replaces;
-- enable_seqscan = off, for this function only, keeps the probes at any size.
CREATE OR REPLACE FUNCTION auth.resolve_session(token_hash bytea)
RETURNS TABLE (session_id uuid, user_id uuid, role name, email text, last_seen_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
  SELECT s.id, u.id, u.role, u.email::text, s.last_seen_at
  FROM auth.sessions s
  JOIN auth.users u ON u.id = s.user_id
  WHERE s.token_hash = resolve_session.token_hash
    AND s.revoked_at IS NULL
    AND s.expires_at > now()
    AND s.idle_expires_at > now()
    AND NOT u.disabled
$$;
COMMENT ON FUNCTION auth.resolve_session(bytea) IS
  'The live session for sha256(secret), with its user''s current role; no row if none';

-- Start a session for a user who has just proven who they are.
CREATE OR REPLACE FUNCTION auth.issue_session(
  user_id uuid, token_hash bytea, idle_seconds integer, absolute_seconds integer,
  ip inet DEFAULT NULL, user_agent text DEFAULT NULL)
RETURNS TABLE (session_id uuid, expires_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO auth.sessions AS s (token_hash, user_id, idle_expires_at, expires_at, ip, user_agent)
  VALUES (issue_session.token_hash, issue_session.user_id,
          now() + make_interval(secs => least(idle_seconds, absolute_seconds)),
          now() + make_interval(secs => absolute_seconds),
          issue_session.ip, left(issue_session.user_agent, 512))
  RETURNING s.id, s.expires_at
$$;

-- Slide the idle expiry. Called by the service at most once per touch interval
-- per session, in its own short transaction, never on the request's (possibly
-- read-only) transaction. Never extends past the absolute expiry.
CREATE OR REPLACE FUNCTION auth.touch_session(session_id uuid, idle_seconds integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.sessions s
  SET last_seen_at = now(),
      idle_expires_at = least(s.expires_at, now() + make_interval(secs => idle_seconds))
  WHERE s.id = touch_session.session_id
    AND s.revoked_at IS NULL
    AND s.idle_expires_at > now()
$$;

-- Replace a live session's secret; the old secret stops working in the same
-- transaction. The session keeps its id and its absolute expiry.
CREATE OR REPLACE FUNCTION auth.rotate_session(old_token_hash bytea, new_token_hash bytea, idle_seconds integer)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.sessions s
  SET token_hash = new_token_hash,
      last_seen_at = now(),
      idle_expires_at = least(s.expires_at, now() + make_interval(secs => idle_seconds))
  FROM auth.resolve_session(old_token_hash) live
  WHERE s.id = live.session_id
  RETURNING s.id, s.user_id, s.expires_at
$$;

-- End one session by its secret's hash (logout). Idempotent.
CREATE OR REPLACE FUNCTION auth.revoke_session(token_hash bytea)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.sessions s SET revoked_at = now()
  WHERE s.token_hash = revoke_session.token_hash AND s.revoked_at IS NULL
  RETURNING s.id
$$;

-- End every live session of a user, except optionally one (the caller's own).
CREATE OR REPLACE FUNCTION auth.revoke_user_sessions(user_id uuid, except_session uuid DEFAULT NULL)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH ended AS (
    UPDATE auth.sessions s SET revoked_at = now()
    WHERE s.user_id = revoke_user_sessions.user_id
      AND s.revoked_at IS NULL
      AND s.id IS DISTINCT FROM except_session
    RETURNING 1)
  SELECT count(*)::integer FROM ended
$$;

-- Delete sessions that ended more than grace_seconds ago (expired or revoked).
CREATE OR REPLACE FUNCTION auth.purge_sessions(grace_seconds integer DEFAULT 0)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (
    DELETE FROM auth.sessions s
    WHERE least(s.idle_expires_at, s.expires_at) < now() - make_interval(secs => grace_seconds)
       OR s.revoked_at < now() - make_interval(secs => grace_seconds)
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

REVOKE ALL ON FUNCTION
  auth.resolve_session(bytea),
  auth.issue_session(uuid, bytea, integer, integer, inet, text),
  auth.touch_session(uuid, integer),
  auth.rotate_session(bytea, bytea, integer),
  auth.revoke_session(bytea),
  auth.revoke_user_sessions(uuid, uuid),
  auth.purge_sessions(integer)
FROM PUBLIC;

-- The service (as authenticator, before any SET ROLE) drives the lifecycle.
-- Request roles get none of these: a request that reached SQL as webuser
-- cannot mint, inspect or end sessions.
GRANT EXECUTE ON FUNCTION
  auth.issue_session(uuid, bytea, integer, integer, inet, text),
  auth.touch_session(uuid, integer),
  auth.rotate_session(bytea, bytea, integer),
  auth.revoke_session(bytea),
  auth.revoke_user_sessions(uuid, uuid),
  auth.purge_sessions(integer)
TO authenticator;

-- resolve_session is also what authenticate() calls. authenticate() runs with
-- the caller's rights: authenticator from sessiongate, any request role when
-- PostgREST runs it as db-pre-request (see 04_authenticate.sql).
GRANT EXECUTE ON FUNCTION auth.resolve_session(bytea) TO authenticator, anonymous, webuser, admin;
