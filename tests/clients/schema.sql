-- schema.sql: a small app for the real-client tests (tests/clients), created
-- by the test run in its own database. Every row belongs to a user; Row Level
-- Security lets each user see and change only their own.

CREATE SCHEMA IF NOT EXISTS clients_demo;
GRANT USAGE ON SCHEMA clients_demo TO webuser;

-- projects: the parent table of the embed.
CREATE TABLE IF NOT EXISTS clients_demo.projects (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner uuid NOT NULL DEFAULT auth.user_id(),
  name text NOT NULL,
  done boolean NOT NULL DEFAULT false
);
ALTER TABLE clients_demo.projects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own_projects ON clients_demo.projects;
CREATE POLICY own_projects ON clients_demo.projects
  USING (owner = auth.user_id()) WITH CHECK (owner = auth.user_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON clients_demo.projects TO webuser;

-- tasks: a foreign key to projects, so `select=name,tasks(title)` embeds.
CREATE TABLE IF NOT EXISTS clients_demo.tasks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES clients_demo.projects (id) ON DELETE CASCADE,
  owner uuid NOT NULL DEFAULT auth.user_id(),
  title text NOT NULL
);
ALTER TABLE clients_demo.tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own_tasks ON clients_demo.tasks;
CREATE POLICY own_tasks ON clients_demo.tasks
  USING (owner = auth.user_id()) WITH CHECK (owner = auth.user_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON clients_demo.tasks TO webuser;

-- An RPC with an argument; SECURITY INVOKER, so RLS still filters its rows.
CREATE OR REPLACE FUNCTION clients_demo.projects_like(pattern text)
RETURNS SETOF clients_demo.projects
LANGUAGE sql STABLE
AS $$ SELECT * FROM clients_demo.projects WHERE name LIKE pattern ORDER BY name $$;
REVOKE ALL ON FUNCTION clients_demo.projects_like(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clients_demo.projects_like(text) TO webuser;
