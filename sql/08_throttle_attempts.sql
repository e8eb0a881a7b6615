-- 08_throttle_attempts.sql: every function on the brute-force counters.
--
-- Runs as sessiongate_owner. The counters' table (auth.throttle) is in
-- 07_hardening.sql; docs/security.md explains the thresholds.
--
-- An attempt is counted in before it is tried, and out when it is known to
-- have failed (a failure) or not (released). Checking first and counting
-- the failure afterwards would let parallel requests through: a password
-- check takes tens of milliseconds, and every attempt sent in that time
-- would pass the check before the first failure was counted, so whoever
-- sent a hundred at once would get a hundred guesses for every lock that
-- expired. Attempts under way are `pending`; they count against the
-- allowance as if each were going to fail.

-- Before revision 0009 the service checked the lock with this function,
-- then tried, then counted the failure.
DROP FUNCTION IF EXISTS auth.throttle_retry_after(text[], text[]);

ALTER TABLE auth.throttle
  ADD COLUMN IF NOT EXISTS pending integer NOT NULL DEFAULT 0 CHECK (pending >= 0);
COMMENT ON COLUMN auth.throttle.pending IS
  'Attempts under way: counted in by throttle_attempt, out by throttle_fail or throttle_release';

-- Count in one attempt for every (scopes[i], subjects[i]), or refuse it:
-- the seconds to wait, 0 when the attempt may go ahead (and is counted).
-- Refused while a subject is locked, or while attempts already under way
-- would use up what is left of its allowance (free_failures[i] failures,
-- then one attempt per lock, exactly as attempts one after another would
-- get); a refused attempt is not counted. A counter idle for
-- `window_seconds` after its last failure or the end of its lock starts
-- over, its pending count with it, so an attempt lost with its process
-- (counted in, never out) is forgotten by then; starting over restarts the
-- window, as a new counter's does, so the attempts that follow see each
-- other again. (An attempt still under way at that moment is forgotten
-- too: at most one extra guess each time a counter starts over.)
--
-- Every function here that writes more than one counter locks them in
-- (scope, subject) order, and the purge skips locked rows, so no two
-- callers ever wait for each other in a cycle.
CREATE OR REPLACE FUNCTION auth.throttle_attempt(
  scopes text[], subjects text[], free_failures integer[], window_seconds integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  wait integer;
BEGIN
  -- A live row per key, locked until this call ends. An upsert rather than
  -- INSERT ... DO NOTHING and SELECT ... FOR UPDATE: a row deleted (a
  -- sign-in clearing it, the purge) while this waited for it would be
  -- skipped by FOR UPDATE, and the attempt would go uncounted; the upsert
  -- inserts a new one instead.
  INSERT INTO auth.throttle AS t (scope, subject, failures, last_failure_at)
  SELECT k.scope, k.subject, 0, now()
  FROM unnest(scopes, subjects) AS k(scope, subject)
  ORDER BY k.scope, k.subject
  ON CONFLICT ON CONSTRAINT throttle_pkey DO UPDATE SET pending = t.pending;

  UPDATE auth.throttle t SET failures = 0, pending = 0, locked_until = NULL, last_failure_at = now()
  FROM unnest(scopes, subjects) AS k(scope, subject)
  WHERE t.scope = k.scope AND t.subject = k.subject
    AND greatest(t.last_failure_at, t.locked_until) < now() - make_interval(secs => window_seconds);

  SELECT max(CASE
               WHEN t.locked_until > now() THEN ceil(extract(epoch FROM t.locked_until - now()))
               WHEN t.pending > 0 AND t.failures + t.pending > k.free THEN 1
             END)::integer
  INTO wait
  FROM unnest(scopes, subjects, free_failures) AS k(scope, subject, free)
  JOIN auth.throttle t ON t.scope = k.scope AND t.subject = k.subject;
  IF wait IS NOT NULL THEN
    RETURN wait;
  END IF;

  UPDATE auth.throttle t SET pending = t.pending + 1
  FROM unnest(scopes, subjects) AS k(scope, subject)
  WHERE t.scope = k.scope AND t.subject = k.subject;
  RETURN 0;
END
$$;

-- An attempt counted in that was not a failure (the password was right,
-- the token was good): count it out.
CREATE OR REPLACE FUNCTION auth.throttle_release(scopes text[], subjects text[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM 1 FROM auth.throttle t
  JOIN unnest(scopes, subjects) AS k(scope, subject) ON t.scope = k.scope AND t.subject = k.subject
  ORDER BY t.scope, t.subject
  FOR UPDATE OF t;
  UPDATE auth.throttle t SET pending = greatest(t.pending - 1, 0)
  FROM unnest(scopes, subjects) AS k(scope, subject)
  WHERE t.scope = k.scope AND t.subject = k.subject;
END
$$;

-- An attempt counted in that failed: count it out as one failure, and
-- return the seconds the subject is now locked for (0 while under the
-- allowance). Exponential back-off: the first failure past
-- `free_failures` locks for `base_seconds`, each further one doubles it,
-- never beyond `max_seconds`. A counter idle for `window_seconds` after
-- its last failure or the end of its lock, whichever is later, starts over.
CREATE OR REPLACE FUNCTION auth.throttle_fail(
  scope text, subject text,
  free_failures integer, base_seconds integer, max_seconds integer, window_seconds integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  counted integer;
  until timestamptz;
BEGIN
  INSERT INTO auth.throttle AS t (scope, subject, failures, last_failure_at)
  VALUES (throttle_fail.scope, throttle_fail.subject, 1, now())
  ON CONFLICT ON CONSTRAINT throttle_pkey DO UPDATE SET
    failures = CASE
      WHEN greatest(t.last_failure_at, t.locked_until)
           < now() - make_interval(secs => window_seconds) THEN 1
      ELSE t.failures + 1 END,
    pending = greatest(t.pending - 1, 0),
    last_failure_at = now()
  RETURNING t.failures INTO counted;

  IF counted > free_failures THEN
    -- The exponent is capped so power() stays finite; 2^20 base units
    -- already exceed any sane maximum.
    until := now() + make_interval(secs => least(
      max_seconds::double precision,
      base_seconds * power(2, least(counted - free_failures - 1, 20))));
  END IF;
  UPDATE auth.throttle t SET locked_until = until
  WHERE t.scope = throttle_fail.scope AND t.subject = throttle_fail.subject;
  RETURN coalesce(ceil(extract(epoch FROM until - now()))::integer, 0);
END
$$;

-- A successful sign-in forgets the account's failures. Address counters are
-- left alone: an attacker with one valid account must not be able to reset
-- the counter of the address they are guessing other passwords from. The
-- row goes only if no other attempt is under way on it; otherwise it keeps
-- their pending count, so each still counts out against its own.
CREATE OR REPLACE FUNCTION auth.throttle_clear(scope text, subject text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.throttle t SET failures = 0, locked_until = NULL
  WHERE t.scope = throttle_clear.scope AND t.subject = throttle_clear.subject AND t.pending > 0;
  DELETE FROM auth.throttle t
  WHERE t.scope = throttle_clear.scope AND t.subject = throttle_clear.subject AND t.pending = 0;
$$;

-- Delete counters that have been quiet for `idle_seconds` (the purge job).
-- Rows an attempt holds are skipped (the next purge gets them), so the
-- purge never waits for an attempt, nor an attempt for the purge. An
-- attempt holds its rows only while it is counted in, not while its
-- password is checked, so `idle_seconds` must be well above
-- THROTTLE_WINDOW (the service passes a day, or twice the window if longer).
CREATE OR REPLACE FUNCTION auth.purge_throttle(idle_seconds integer DEFAULT 86400)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH quiet AS (
    SELECT t.scope, t.subject FROM auth.throttle t
    WHERE greatest(t.last_failure_at, t.locked_until) < now() - make_interval(secs => idle_seconds)
    FOR UPDATE SKIP LOCKED),
  gone AS (
    DELETE FROM auth.throttle t USING quiet q
    WHERE t.scope = q.scope AND t.subject = q.subject
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

REVOKE ALL ON FUNCTION
  auth.throttle_attempt(text[], text[], integer[], integer),
  auth.throttle_release(text[], text[]),
  auth.throttle_fail(text, text, integer, integer, integer, integer),
  auth.throttle_clear(text, text),
  auth.purge_throttle(integer)
FROM PUBLIC;
-- The service drives the counters as authenticator, before any SET ROLE; no
-- request role may read, reset or inflate them.
GRANT EXECUTE ON FUNCTION
  auth.throttle_attempt(text[], text[], integer[], integer),
  auth.throttle_release(text[], text[]),
  auth.throttle_fail(text, text, integer, integer, integer, integer),
  auth.throttle_clear(text, text),
  auth.purge_throttle(integer)
TO authenticator;
