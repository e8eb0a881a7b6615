-- 06_accounts_lifecycle.sql: verification and reset tokens, the events outbox,
-- self-service and admin account management.
--
-- After PostgREST's "User Management" example, with its gaps closed: tokens
-- expire, are single use, bound to a purpose and stored only as sha256; every
-- mail-worthy event is a row in an outbox written in the requesting
-- transaction, so a mailer that was down misses nothing; NOTIFY carries only
-- the event's id and kind, never a secret.
--
-- The file is applied by the migrating (admin) user: the first block needs to
-- grant a role membership, which the owner role cannot. Everything after it
-- is created by sessiongate_owner.

-- The clearance check below lets an admin grant only roles the admin's own
-- role is a member of. Admins must be able to hand out (and demote to) the
-- default role, so admin is made a member of webuser; admin already holds
-- every privilege webuser has in the demo schema.
DO $$
BEGIN
  IF NOT pg_has_role('admin', 'webuser', 'MEMBER') THEN
    GRANT webuser TO admin;
  END IF;
END
$$;

SET LOCAL ROLE sessiongate_owner;

-- Before revision 0007 verify_email() took the token alone and asked
-- nothing of whoever followed the link. CREATE OR REPLACE cannot add the
-- parameter, and the old one must not survive beside the new one.
DROP FUNCTION IF EXISTS auth.verify_email(bytea);
-- Before revision 0010 purge_events() took the retention alone and never
-- touched an undelivered event. CREATE OR REPLACE cannot add the lifetime
-- parameter, and the old one must not survive beside the new one: a call
-- with one argument would match both.
DROP FUNCTION IF EXISTS auth.purge_events(integer);

-- Verification and reset tokens. The mail carries the token; this table
-- holds only sha256(token), so a copy of it lets nobody verify or reset
-- anything. `email` is the address the token proves: the account's own for a
-- sign-up or reset, the new one for an e-mail change.
CREATE TABLE IF NOT EXISTS auth.tokens (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash  bytea NOT NULL CHECK (octet_length(token_hash) = 32),
  user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset')),
  email       auth.email_address NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  -- For a sign-up repeated on a still unverified account: the password that
  -- sign-up chose, set when (and only if) its own link is followed. Without
  -- it, whoever signed the address up first would keep their password after
  -- the address's owner verified ("pre-hijacking").
  password_hash text CHECK (password_hash ~ '^\$')
);
COMMENT ON TABLE auth.tokens IS 'sessiongate verification and reset tokens; token_hash = sha256(token)';
-- Redeeming a token: one unique index probe.
CREATE UNIQUE INDEX IF NOT EXISTS tokens_token_hash_key ON auth.tokens (token_hash);
-- "A new request invalidates the previous token of the same kind."
CREATE INDEX IF NOT EXISTS tokens_user_purpose_idx ON auth.tokens (user_id, purpose);
ALTER TABLE auth.tokens ENABLE ROW LEVEL SECURITY;

-- The outbox. A row is written in the same transaction as the request that
-- causes it, so it exists exactly when the request committed; the mailer
-- marks it delivered once the message went out, and retries it until then.
-- The payload names the user and the address, never a token: the mailer
-- mints the token when it sends (see auth.mint_token).
CREATE TABLE IF NOT EXISTS auth.events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('validate', 'reset', 'account_exists')),
  payload      jsonb NOT NULL,
  created      timestamptz NOT NULL DEFAULT now(),
  delivered    timestamptz,
  attempts     integer NOT NULL DEFAULT 0,
  -- Backoff: the mailer leaves the row alone until then.
  next_attempt timestamptz NOT NULL DEFAULT now(),
  last_error   text
);
COMMENT ON TABLE auth.events IS 'sessiongate outbox: mails to send, kept until delivered';
-- The mailer's queue: what is due, oldest first.
CREATE INDEX IF NOT EXISTS events_pending_idx ON auth.events (next_attempt, id) WHERE delivered IS NULL;
ALTER TABLE auth.events ENABLE ROW LEVEL SECURITY;

-- Write an event and announce it. The NOTIFY goes out only if the
-- transaction commits, and says which row to look at, nothing more; the
-- channels are the example's: validate (sign-up, e-mail change) and reset.
CREATE OR REPLACE FUNCTION auth.enqueue_event(kind text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  event_id bigint;
BEGIN
  INSERT INTO auth.events (kind, payload) VALUES (enqueue_event.kind, enqueue_event.payload)
  RETURNING id INTO event_id;
  PERFORM pg_notify(
    CASE enqueue_event.kind WHEN 'reset' THEN 'reset' ELSE 'validate' END,
    jsonb_build_object('id', event_id, 'kind', enqueue_event.kind)::text);
  RETURN event_id;
END
$$;

-- Forget a user's unredeemed tokens of one purpose: a new request (or a
-- password change) makes the previous link useless at once.
CREATE OR REPLACE FUNCTION auth.invalidate_tokens(user_id uuid, purpose text) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  DELETE FROM auth.tokens t
  WHERE t.user_id = invalidate_tokens.user_id AND t.purpose = invalidate_tokens.purpose
    AND t.used_at IS NULL
$$;

-- Sign-up. A new address gets an unverified account and a verification
-- mail. An address that already has an account gets no new account and the
-- same answer (the service cannot tell the caller which case it was): an
-- unverified owner gets a fresh verification mail, a verified one a notice
-- that someone tried to sign up. Returns true when an account was created.
CREATE OR REPLACE FUNCTION auth.sign_up(email text, password_hash text, role name DEFAULT 'webuser')
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  new_id uuid;
  existing record;
BEGIN
  INSERT INTO auth.users (email, password_hash, role, verified)
  VALUES (sign_up.email, sign_up.password_hash, sign_up.role, false)
  ON CONFLICT (email) DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NOT NULL THEN
    PERFORM auth.enqueue_event('validate', jsonb_build_object('user_id', new_id, 'email', sign_up.email));
    RETURN true;
  END IF;

  SELECT u.id, u.email::text AS email, u.verified, u.disabled INTO existing
  FROM auth.users u WHERE lower(u.email::text) = lower(sign_up.email);
  IF existing.disabled THEN
    RETURN false;
  ELSIF existing.verified THEN
    PERFORM auth.enqueue_event('account_exists',
      jsonb_build_object('user_id', existing.id, 'email', existing.email));
  ELSE
    -- Still unverified: the owner of the address may follow this new link
    -- and get the password chosen now, but only by typing that password
    -- (auth.verification_password), so a sign-up by somebody else hands
    -- them nothing. The hash rides in the outbox only until the mailer has
    -- minted the token.
    PERFORM auth.invalidate_tokens(existing.id, 'verify');
    PERFORM auth.enqueue_event('validate',
      jsonb_build_object('user_id', existing.id, 'email', existing.email,
                         'password_hash', sign_up.password_hash));
  END IF;
  RETURN false;
END
$$;

-- Resend the verification mail. Silent for unknown, verified or disabled
-- accounts: the caller learns nothing either way.
CREATE OR REPLACE FUNCTION auth.request_verification(email text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  target record;
BEGIN
  SELECT u.id, u.email::text AS email INTO target FROM auth.users u
  WHERE lower(u.email::text) = lower(request_verification.email)
    AND NOT u.verified AND NOT u.disabled;
  IF FOUND THEN
    PERFORM auth.invalidate_tokens(target.id, 'verify');
    PERFORM auth.enqueue_event('validate', jsonb_build_object('user_id', target.id, 'email', target.email));
  END IF;
END
$$;

-- Forgotten password. Silent for unknown or disabled accounts.
CREATE OR REPLACE FUNCTION auth.request_password_reset(email text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  target record;
BEGIN
  SELECT u.id, u.email::text AS email INTO target FROM auth.users u
  WHERE lower(u.email::text) = lower(request_password_reset.email) AND NOT u.disabled;
  IF FOUND THEN
    PERFORM auth.invalidate_tokens(target.id, 'reset');
    PERFORM auth.enqueue_event('reset', jsonb_build_object('user_id', target.id, 'email', target.email));
  END IF;
END
$$;

-- A signed-in user asks to move to another address (the service checked the
-- current password). The address changes only when the link sent to the new
-- address is followed. If the new address already belongs to an account,
-- that account's owner gets a notice instead, and the caller the same answer.
CREATE OR REPLACE FUNCTION auth.request_email_change(user_id uuid, new_email text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  owner record;
BEGIN
  SELECT u.id, u.email::text AS email INTO owner FROM auth.users u
  WHERE lower(u.email::text) = lower(request_email_change.new_email);
  IF FOUND THEN
    IF owner.id <> request_email_change.user_id THEN
      PERFORM auth.enqueue_event('account_exists',
        jsonb_build_object('user_id', owner.id, 'email', owner.email));
    END IF;
    RETURN;
  END IF;
  PERFORM auth.invalidate_tokens(request_email_change.user_id, 'verify');
  PERFORM auth.enqueue_event('validate',
    jsonb_build_object('user_id', request_email_change.user_id, 'email', request_email_change.new_email));
END
$$;

-- The mailer's side of the outbox.
--
-- Take the oldest due event and lock it; SKIP LOCKED lets several mailers
-- share the queue without sending anything twice. The lock lasts until the
-- mailer's transaction ends, after the message went out.
CREATE OR REPLACE FUNCTION auth.claim_event()
RETURNS TABLE (id bigint, kind text, payload jsonb, attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT e.id, e.kind, e.payload, e.attempts
  FROM auth.events e
  WHERE e.delivered IS NULL AND e.next_attempt <= now()
  ORDER BY e.next_attempt, e.id
  LIMIT 1
  FOR UPDATE SKIP LOCKED
$$;

-- Mint the token a mail will carry, in the mailer's transaction: the secret
-- exists only in the mailer's memory and the mail, its hash only here. Any
-- earlier unredeemed token of the same purpose stops working. Returns the
-- address to send to, or NULL when the mail no longer makes sense (account
-- gone or disabled, address already verified).
CREATE OR REPLACE FUNCTION auth.mint_token(
  user_id uuid, purpose text, token_hash bytea, email text, lifetime_seconds integer,
  password_hash text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  target record;
  recipient text;
BEGIN
  IF mint_token.lifetime_seconds <= 0 THEN
    RAISE EXCEPTION 'token lifetime must be positive' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT u.id, u.email, u.verified, u.disabled INTO target
  FROM auth.users u WHERE u.id = mint_token.user_id FOR UPDATE;
  IF NOT FOUND OR target.disabled THEN
    RETURN NULL;
  END IF;
  IF mint_token.purpose = 'verify' THEN
    recipient := coalesce(mint_token.email, target.email::text);
    IF target.verified AND lower(target.email::text) = lower(recipient) THEN
      RETURN NULL;
    END IF;
  ELSE
    recipient := target.email::text;
  END IF;
  PERFORM auth.invalidate_tokens(target.id, mint_token.purpose);
  INSERT INTO auth.tokens (token_hash, user_id, purpose, email, expires_at, password_hash)
  VALUES (mint_token.token_hash, target.id, mint_token.purpose, recipient,
          now() + make_interval(secs => mint_token.lifetime_seconds),
          CASE WHEN mint_token.purpose = 'verify' THEN mint_token.password_hash END);
  RETURN recipient;
END
$$;

CREATE OR REPLACE FUNCTION auth.event_delivered(event_id bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.events e
  SET delivered = now(), attempts = e.attempts + 1, last_error = NULL,
      payload = e.payload - 'password_hash'
  WHERE e.id = event_delivered.event_id
$$;

-- A failed attempt: try again after `retry_seconds` (the mailer's backoff).
CREATE OR REPLACE FUNCTION auth.event_failed(event_id bigint, retry_seconds double precision, error text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.events e
  SET attempts = e.attempts + 1,
      next_attempt = now() + make_interval(secs => retry_seconds),
      last_error = left(event_failed.error, 1000)
  WHERE e.id = event_failed.event_id AND e.delivered IS NULL
$$;

-- Redeem a token: single use, unexpired, of the right purpose, for an
-- enabled account. A reset link works only while the address it was sent
-- to is still the account's: after a move to a new address (often because
-- the old mailbox was lost), links in the old mailbox are dead. Internal:
-- the two flows below are the only callers.
CREATE OR REPLACE FUNCTION auth.consume_token(purpose text, token_hash bytea)
RETURNS TABLE (user_id uuid, email text, password_hash text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE auth.tokens t SET used_at = now()
  FROM auth.users u
  WHERE t.token_hash = consume_token.token_hash
    AND t.purpose = consume_token.purpose
    AND t.used_at IS NULL
    AND t.expires_at > now()
    AND u.id = t.user_id
    AND NOT u.disabled
    AND (t.purpose <> 'reset' OR lower(t.email::text) = lower(u.email::text))
  RETURNING t.user_id, t.email::text, t.password_hash
$$;

-- The password whoever follows a verification link must type, as its
-- hash: one row for a live link, NULL in it when none is needed, no row for
-- a bad link. A link that carries a sign-up's password installs it, and a
-- link to the address of an account not yet verified confirms the
-- password the account already has; either way, following it must prove
-- knowing that password, or signing up somebody else's address (before
-- them, or again while they wait for their mail) would hand their account
-- to whoever chose it. A link that moves an account to a new address asks
-- for nothing: its current password was checked when the move was asked
-- for.
CREATE OR REPLACE FUNCTION auth.verification_password(token_hash bytea)
RETURNS TABLE (password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN t.password_hash IS NOT NULL THEN t.password_hash
              WHEN NOT u.verified AND lower(t.email::text) = lower(u.email::text)
                THEN u.password_hash
         END
  FROM auth.tokens t
  JOIN auth.users u ON u.id = t.user_id
  WHERE t.token_hash = verification_password.token_hash
    AND t.purpose = 'verify'
    AND t.used_at IS NULL
    AND t.expires_at > now()
    AND NOT u.disabled
$$;

-- Follow a verification link: the token's address becomes the account's
-- address, verified. `checked_hash` is the hash auth.verification_password()
-- named, whose password the service has just checked (NULL when none was
-- needed); if it is not that hash now, nothing changes. No row for a bad
-- token or a hash that does not match. A unique violation means the new
-- address was taken meanwhile; the token then stays unused.
CREATE OR REPLACE FUNCTION auth.verify_email(token_hash bytea, checked_hash text)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  used record;
BEGIN
  IF EXISTS (SELECT 1 FROM auth.verification_password(verify_email.token_hash) p
             WHERE p.password_hash IS DISTINCT FROM verify_email.checked_hash) THEN
    RETURN;
  END IF;
  SELECT * INTO used FROM auth.consume_token('verify', verify_email.token_hash);
  IF used.user_id IS NULL THEN
    RETURN;
  END IF;
  UPDATE auth.users u
  SET email = used.email, verified = true,
      password_hash = coalesce(used.password_hash, u.password_hash)
  WHERE u.id = used.user_id;
  PERFORM auth.invalidate_tokens(used.user_id, 'verify');
  IF used.password_hash IS NOT NULL THEN
    -- The password changed hands: whoever held the old one is signed out.
    PERFORM auth.revoke_user_sessions(used.user_id);
  END IF;
  RETURN QUERY SELECT * FROM auth.user_profiles p WHERE p.id = used.user_id;
END
$$;

-- Follow a reset link: new password, every session of the user ended. The
-- mail reached the account's address, so that address counts as verified.
CREATE OR REPLACE FUNCTION auth.reset_password(token_hash bytea, new_hash text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  used record;
BEGIN
  SELECT * INTO used FROM auth.consume_token('reset', reset_password.token_hash);
  IF used.user_id IS NULL THEN
    RETURN NULL;
  END IF;
  UPDATE auth.users u
  SET password_hash = reset_password.new_hash,
      -- consume_token() redeems a reset link only for the account's own
      -- address, which the mail has now reached.
      verified = true
  WHERE u.id = used.user_id;
  PERFORM auth.invalidate_tokens(used.user_id, 'reset');
  PERFORM auth.revoke_user_sessions(used.user_id);
  RETURN used.user_id;
END
$$;

-- A signed-in user changes their password (the service verified the current
-- one against old_hash). Only if the hash is still old_hash, so two
-- concurrent changes cannot both win. Other sessions end; pending reset
-- links die.
CREATE OR REPLACE FUNCTION auth.change_password(
  user_id uuid, old_hash text, new_hash text, keep_session uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE auth.users u SET password_hash = change_password.new_hash
  WHERE u.id = change_password.user_id AND u.password_hash = change_password.old_hash;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM auth.invalidate_tokens(change_password.user_id, 'reset');
  PERFORM auth.revoke_user_sessions(change_password.user_id, change_password.keep_session);
  RETURN true;
END
$$;

-- A user's live sessions, newest first, for "where am I signed in".
CREATE OR REPLACE FUNCTION auth.list_user_sessions(user_id uuid)
RETURNS TABLE (id uuid, created_at timestamptz, last_seen_at timestamptz,
               expires_at timestamptz, ip inet, user_agent text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.id, s.created_at, s.last_seen_at, least(s.idle_expires_at, s.expires_at), s.ip, s.user_agent
  FROM auth.sessions s
  WHERE s.user_id = list_user_sessions.user_id
    AND s.revoked_at IS NULL AND s.expires_at > now() AND s.idle_expires_at > now()
  ORDER BY s.created_at DESC, s.id
$$;

-- End one session by id, only if it is the user's own.
CREATE OR REPLACE FUNCTION auth.revoke_user_session(user_id uuid, session_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH ended AS (
    UPDATE auth.sessions s SET revoked_at = now()
    WHERE s.id = revoke_user_session.session_id
      AND s.user_id = revoke_user_session.user_id
      AND s.revoked_at IS NULL
    RETURNING 1)
  SELECT EXISTS (SELECT FROM ended)
$$;

-- Every live session, for the operator's `sessiongate sessions list`.
CREATE OR REPLACE FUNCTION auth.list_all_sessions()
RETURNS TABLE (id uuid, user_id uuid, email text, created_at timestamptz, last_seen_at timestamptz,
               expires_at timestamptz, ip inet, user_agent text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.id, s.user_id, u.email::text, s.created_at, s.last_seen_at,
         least(s.idle_expires_at, s.expires_at), s.ip, s.user_agent
  FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id
  WHERE s.revoked_at IS NULL AND s.expires_at > now() AND s.idle_expires_at > now()
  ORDER BY u.email, s.created_at DESC
$$;

-- End one session by its id, whoever it belongs to (the operator's revoke).
CREATE OR REPLACE FUNCTION auth.revoke_session_by_id(session_id uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH ended AS (
    UPDATE auth.sessions s SET revoked_at = now()
    WHERE s.id = revoke_session_by_id.session_id AND s.revoked_at IS NULL
    RETURNING 1)
  SELECT EXISTS (SELECT FROM ended)
$$;

-- Operator changes (the CLI, with the database's trust; and the admin
-- functions below, after their checks). NULL leaves a field as it is.
-- Disabling ends the user's sessions at once; the users trigger checks the
-- role is one authenticator may switch into.
CREATE OR REPLACE FUNCTION auth.update_user(
  user_id uuid, new_role name DEFAULT NULL, new_disabled boolean DEFAULT NULL,
  new_verified boolean DEFAULT NULL)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE auth.users u
  SET role = coalesce(update_user.new_role, u.role),
      disabled = coalesce(update_user.new_disabled, u.disabled),
      verified = coalesce(update_user.new_verified, u.verified)
  WHERE u.id = update_user.user_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF update_user.new_disabled THEN
    PERFORM auth.revoke_user_sessions(update_user.user_id);
  END IF;
  RETURN QUERY SELECT * FROM auth.user_profiles p WHERE p.id = update_user.user_id;
END
$$;

-- Deleting a user deletes their sessions (ON DELETE CASCADE), so they end
-- in the same transaction.
CREATE OR REPLACE FUNCTION auth.delete_user(user_id uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (DELETE FROM auth.users u WHERE u.id = delete_user.user_id RETURNING 1)
  SELECT EXISTS (SELECT FROM gone)
$$;

CREATE OR REPLACE FUNCTION auth.find_user(email text)
RETURNS SETOF auth.user_profiles
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM auth.user_profiles p WHERE lower(p.email) = lower(find_user.email)
$$;

-- Admin management, on behalf of a signed-in admin. Each function takes the
-- admin's session (sha256 of the cookie secret) and resolves it here, so the
-- acting role comes from the database, not from what the service was told.

-- The acting admin: a live session whose role is a member of admin_role.
CREATE OR REPLACE FUNCTION auth.admin_actor(
  actor_token_hash bytea, admin_role name, OUT user_id uuid, OUT role name)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  SELECT s.user_id, s.role INTO admin_actor.user_id, admin_actor.role
  FROM auth.resolve_session(admin_actor.actor_token_hash) s;
  IF admin_actor.user_id IS NULL
     OR NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = admin_actor.admin_role)
     OR NOT pg_has_role(admin_actor.role, admin_actor.admin_role, 'MEMBER') THEN
    RAISE EXCEPTION 'admin role required' USING ERRCODE = 'insufficient_privilege';
  END IF;
END
$$;

-- The clearance check: nobody grants, or manages a holder of, a role that
-- their own role is not a member of.
CREATE OR REPLACE FUNCTION auth.require_clearance(actor_role name, wanted name) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = require_clearance.wanted) THEN
    RAISE EXCEPTION 'role "%" does not exist', wanted
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Create the role first, or use webuser.';
  END IF;
  IF NOT pg_has_role(require_clearance.actor_role, require_clearance.wanted, 'MEMBER') THEN
    RAISE EXCEPTION 'role "%" is beyond your clearance', wanted
      USING ERRCODE = 'insufficient_privilege',
            HINT = format('Your role %I is not a member of %I.', actor_role, wanted);
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION auth.admin_list_users(actor_token_hash bytea, admin_role name)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.admin_actor(actor_token_hash, admin_role);
  RETURN QUERY SELECT * FROM auth.user_profiles p ORDER BY p.created_at, p.email;
END
$$;

CREATE OR REPLACE FUNCTION auth.admin_get_user(actor_token_hash bytea, admin_role name, user_id uuid)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.admin_actor(actor_token_hash, admin_role);
  RETURN QUERY SELECT * FROM auth.user_profiles p WHERE p.id = admin_get_user.user_id;
END
$$;

CREATE OR REPLACE FUNCTION auth.admin_create_user(
  actor_token_hash bytea, admin_role name, email text, password_hash text, role name,
  verified boolean)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  actor record;
BEGIN
  SELECT * INTO actor FROM auth.admin_actor(actor_token_hash, admin_role);
  PERFORM auth.require_clearance(actor.role, admin_create_user.role);
  RETURN QUERY SELECT * FROM auth.create_user(
    admin_create_user.email, admin_create_user.password_hash, admin_create_user.role,
    admin_create_user.verified);
END
$$;

-- Change a user's role, disabled or verified flag. The admin must hold the
-- user's current role (no managing those above you) and any new role.
CREATE OR REPLACE FUNCTION auth.admin_update_user(
  actor_token_hash bytea, admin_role name, user_id uuid, new_role name DEFAULT NULL,
  new_disabled boolean DEFAULT NULL, new_verified boolean DEFAULT NULL)
RETURNS SETOF auth.user_profiles
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  actor record;
  current_role_name name;
BEGIN
  SELECT * INTO actor FROM auth.admin_actor(actor_token_hash, admin_role);
  SELECT u.role INTO current_role_name FROM auth.users u
  WHERE u.id = admin_update_user.user_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  PERFORM auth.require_clearance(actor.role, current_role_name);
  IF admin_update_user.new_role IS NOT NULL THEN
    PERFORM auth.require_clearance(actor.role, admin_update_user.new_role);
  END IF;
  RETURN QUERY SELECT * FROM auth.update_user(
    admin_update_user.user_id, admin_update_user.new_role, admin_update_user.new_disabled,
    admin_update_user.new_verified);
END
$$;

CREATE OR REPLACE FUNCTION auth.admin_delete_user(actor_token_hash bytea, admin_role name, user_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  actor record;
  target_role name;
BEGIN
  SELECT * INTO actor FROM auth.admin_actor(actor_token_hash, admin_role);
  SELECT u.role INTO target_role FROM auth.users u WHERE u.id = admin_delete_user.user_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM auth.require_clearance(actor.role, target_role);
  RETURN auth.delete_user(admin_delete_user.user_id);
END
$$;

-- End every session of a user; NULL when there is no such user.
CREATE OR REPLACE FUNCTION auth.admin_revoke_sessions(actor_token_hash bytea, admin_role name, user_id uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  actor record;
  target_role name;
BEGIN
  SELECT * INTO actor FROM auth.admin_actor(actor_token_hash, admin_role);
  SELECT u.role INTO target_role FROM auth.users u WHERE u.id = admin_revoke_sessions.user_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM auth.require_clearance(actor.role, target_role);
  RETURN auth.revoke_user_sessions(admin_revoke_sessions.user_id);
END
$$;

-- Housekeeping, run by the service's periodic purge and the CLI: redeemed
-- or expired tokens, and events (below).
CREATE OR REPLACE FUNCTION auth.purge_tokens(grace_seconds integer DEFAULT 0) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (
    DELETE FROM auth.tokens t
    WHERE coalesce(t.used_at, t.expires_at) < now() - make_interval(secs => grace_seconds)
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

-- Events delivered longer ago than the retention go. So does an undelivered
-- event that carries a repeated sign-up's password hash (auth.sign_up) once
-- the sign-up is older than a verification link's lifetime: mailed at once,
-- its link would be dead by now, and the hash must not wait in the outbox
-- for ever for a mailer that never manages to send it (delivering strips
-- it, auth.event_delivered). Every other undelivered event stays until it
-- is sent, so a mailer that was down misses nothing. An event a mailer
-- holds (it is being sent) is passed over, not waited for. A NULL lifetime
-- (a service from before revision 0010) leaves undelivered events alone.
CREATE OR REPLACE FUNCTION auth.purge_events(
  retention_seconds integer, sign_up_lifetime_seconds integer DEFAULT NULL)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (
    DELETE FROM auth.events e
    WHERE e.id IN (
      SELECT d.id FROM auth.events d
      WHERE d.delivered < now() - make_interval(secs => purge_events.retention_seconds)
         OR (d.delivered IS NULL AND d.payload ? 'password_hash'
             AND d.created < now() - make_interval(secs => purge_events.sign_up_lifetime_seconds))
      FOR UPDATE SKIP LOCKED)
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

-- Internal helpers stay private to the owner: a caller could otherwise mint
-- events or redeem tokens without the checks the public functions make.
REVOKE ALL ON FUNCTION
  auth.enqueue_event(text, jsonb),
  auth.invalidate_tokens(uuid, text),
  auth.consume_token(text, bytea),
  auth.admin_actor(bytea, name),
  auth.require_clearance(name, name)
FROM PUBLIC;

-- The service (and the mailer and CLI, all as authenticator) call these.
-- No request role gets any of them.
REVOKE ALL ON FUNCTION
  auth.sign_up(text, text, name),
  auth.request_verification(text),
  auth.request_password_reset(text),
  auth.request_email_change(uuid, text),
  auth.claim_event(),
  auth.mint_token(uuid, text, bytea, text, integer, text),
  auth.event_delivered(bigint),
  auth.event_failed(bigint, double precision, text),
  auth.verification_password(bytea),
  auth.verify_email(bytea, text),
  auth.reset_password(bytea, text),
  auth.change_password(uuid, text, text, uuid),
  auth.list_user_sessions(uuid),
  auth.revoke_user_session(uuid, uuid),
  auth.list_all_sessions(),
  auth.revoke_session_by_id(uuid),
  auth.update_user(uuid, name, boolean, boolean),
  auth.delete_user(uuid),
  auth.find_user(text),
  auth.admin_list_users(bytea, name),
  auth.admin_get_user(bytea, name, uuid),
  auth.admin_create_user(bytea, name, text, text, name, boolean),
  auth.admin_update_user(bytea, name, uuid, name, boolean, boolean),
  auth.admin_delete_user(bytea, name, uuid),
  auth.admin_revoke_sessions(bytea, name, uuid),
  auth.purge_tokens(integer),
  auth.purge_events(integer, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  auth.sign_up(text, text, name),
  auth.request_verification(text),
  auth.request_password_reset(text),
  auth.request_email_change(uuid, text),
  auth.claim_event(),
  auth.mint_token(uuid, text, bytea, text, integer, text),
  auth.event_delivered(bigint),
  auth.event_failed(bigint, double precision, text),
  auth.verification_password(bytea),
  auth.verify_email(bytea, text),
  auth.reset_password(bytea, text),
  auth.change_password(uuid, text, text, uuid),
  auth.list_user_sessions(uuid),
  auth.revoke_user_session(uuid, uuid),
  auth.list_all_sessions(),
  auth.revoke_session_by_id(uuid),
  auth.update_user(uuid, name, boolean, boolean),
  auth.delete_user(uuid),
  auth.find_user(text),
  auth.admin_list_users(bytea, name),
  auth.admin_get_user(bytea, name, uuid),
  auth.admin_create_user(bytea, name, text, text, name, boolean),
  auth.admin_update_user(bytea, name, uuid, name, boolean, boolean),
  auth.admin_delete_user(bytea, name, uuid),
  auth.admin_revoke_sessions(bytea, name, uuid),
  auth.purge_tokens(integer),
  auth.purge_events(integer, integer)
TO authenticator;

RESET ROLE;
