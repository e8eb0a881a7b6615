-- 07_hardening.sql: brute-force counters and per-role time limits.
--
-- Runs as sessiongate_owner (role settings need the admin; see the end).
-- docs/security.md explains the thresholds and why they are what they are.

-- Failed attempts, counted in PostgreSQL so every worker and every host sees
-- the same numbers. One row per (scope, subject): scope names what is
-- protected and by what key ('login:account', 'login:address', 'reset:...'),
-- subject is the key itself: the service's HMAC of a normalised e-mail
-- address, under a key only the service holds (an address typed at login may
-- not belong to anyone, and may even be a password typed in the wrong box,
-- so it is never stored as typed, nor as a plain hash a dictionary reverses;
-- see app/addresses.py), or a client network (an IPv4 address, an IPv6 /64).
CREATE TABLE IF NOT EXISTS auth.throttle (
  scope           text NOT NULL CHECK (length(scope) <= 64),
  subject         text NOT NULL CHECK (length(subject) <= 128),
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_failure_at timestamptz NOT NULL DEFAULT now(),
  -- Attempts are refused until then; NULL while under the free allowance.
  locked_until    timestamptz,
  PRIMARY KEY (scope, subject)
);
COMMENT ON TABLE auth.throttle IS
  'sessiongate brute-force counters: failures per account and per client network';
ALTER TABLE auth.throttle ENABLE ROW LEVEL SECURITY;
-- The purge job looks for counters nobody has touched for a while.
CREATE INDEX IF NOT EXISTS throttle_last_failure_idx ON auth.throttle (last_failure_at);

-- Every function on the counters (counting attempts and failures,
-- clearing, purging) is in sql/08_throttle_attempts.sql.

REVOKE ALL ON auth.throttle FROM PUBLIC;

-- Per-role time limits. Each request's transaction sets its role's (role
-- settings alone apply only at login, never on SET ROLE): the data API from
-- its schema cache, which re-reads them on NOTIFY pgrst, 'reload config' or
-- 'reload schema'; auth.authenticate() from the catalog for other callers;
-- PostgREST 12+ applies the same ALTER ROLE settings to the roles it
-- impersonates. Anonymous callers get the least: anyone on the internet can
-- send those requests. Signed-in users get more, admins (reports, user
-- management) the most. lock_timeout keeps a request from queueing behind a
-- long lock instead of failing fast. The authenticator's own limit covers the
-- service's queries outside request transactions (login, session lifecycle).
-- Roles are cluster-wide; changing these here changes them for every
-- database on the cluster, which is what an operator expects of ALTER ROLE.
RESET ROLE;
ALTER ROLE anonymous SET statement_timeout = '3s';
ALTER ROLE anonymous SET lock_timeout = '1s';
ALTER ROLE webuser SET statement_timeout = '10s';
ALTER ROLE webuser SET lock_timeout = '2s';
ALTER ROLE admin SET statement_timeout = '30s';
ALTER ROLE admin SET lock_timeout = '5s';
ALTER ROLE authenticator SET statement_timeout = '15s';
SET LOCAL ROLE sessiongate_owner;
