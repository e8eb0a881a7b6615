-- 10_demo_todos.sql: the demo application, after PostgREST's sessions example.
--
-- Runs as sessiongate_owner. A todo belongs to the user who created it; a user
-- sees their own todos and everyone's public ones, and changes only their own.
-- The policies, not the service, decide that.

CREATE TABLE IF NOT EXISTS app.todos (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Defaults to the caller, so a client never has to (and cannot usefully)
  -- say whose todo it is: the policy's WITH CHECK refuses anyone else's id.
  user_id     uuid NOT NULL DEFAULT auth.user_id() REFERENCES auth.users (id) ON DELETE CASCADE,
  description text NOT NULL CHECK (length(description) BETWEEN 1 AND 1000),
  done        boolean NOT NULL DEFAULT false,
  public      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS todos_user_id_idx ON app.todos (user_id);
CREATE INDEX IF NOT EXISTS todos_public_idx ON app.todos (id) WHERE public;

-- FORCE: the api.todos view below runs with its owner's rights, and the owner
-- would otherwise bypass every policy on its own table.
ALTER TABLE app.todos ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.todos FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS todos_read ON app.todos;
CREATE POLICY todos_read ON app.todos FOR SELECT
  USING (public OR user_id = auth.user_id());

DROP POLICY IF EXISTS todos_insert ON app.todos;
CREATE POLICY todos_insert ON app.todos FOR INSERT
  WITH CHECK (user_id = auth.user_id());

DROP POLICY IF EXISTS todos_update ON app.todos;
CREATE POLICY todos_update ON app.todos FOR UPDATE
  USING (user_id = auth.user_id())
  WITH CHECK (user_id = auth.user_id());

DROP POLICY IF EXISTS todos_delete ON app.todos;
CREATE POLICY todos_delete ON app.todos FOR DELETE
  USING (user_id = auth.user_id());

-- What HTTP sees. A plain view is automatically updatable; inserts through it
-- take app.todos's defaults (user_id, done, public, created_at).
CREATE OR REPLACE VIEW api.todos AS
  SELECT id, user_id, description, done, public, created_at
  FROM app.todos;
COMMENT ON VIEW api.todos IS 'Todos: your own and everyone''s public ones';

REVOKE ALL ON api.todos FROM PUBLIC;
-- Anonymous visitors read public todos; signed-in users and admins manage
-- their own. Column grants keep id, user_id and created_at server-owned.
GRANT SELECT ON api.todos TO anonymous, webuser, admin;
GRANT INSERT (description, done, public), UPDATE (description, done, public), DELETE
  ON api.todos TO webuser, admin;
