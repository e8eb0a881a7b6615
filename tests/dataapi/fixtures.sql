-- Objects for the data API tests: a small library with every relationship
-- kind, and functions covering RPC shapes, GUC hooks and errors.
CREATE SCHEMA dapi;
GRANT USAGE ON SCHEMA dapi TO anonymous, webuser;

CREATE TABLE dapi.authors (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE dapi.books (
  id int PRIMARY KEY,
  title text NOT NULL,
  author_id int REFERENCES dapi.authors,
  year int,
  tags text[],
  meta jsonb
);
CREATE TABLE dapi.genres (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE dapi.book_genres (
  book_id int REFERENCES dapi.books,
  genre_id int REFERENCES dapi.genres,
  PRIMARY KEY (book_id, genre_id)
);
CREATE TABLE dapi.notes (
  id serial PRIMARY KEY,
  body text NOT NULL,
  method text DEFAULT current_setting('request.method', true)
);
-- A self-referencing to-one chain: nested spreads and embeds of any depth.
CREATE TABLE dapi.nodes (id int PRIMARY KEY, name text NOT NULL, parent_id int REFERENCES dapi.nodes);

INSERT INTO dapi.authors VALUES (1, 'Ursula'), (2, 'Terry'), (3, 'Nobody');
INSERT INTO dapi.books VALUES
  (1, 'A Wizard of Earthsea', 1, 1968, '{fantasy,sea}', '{"pages": 183, "isbn": {"ten": "x1"}}'),
  (2, 'The Dispossessed', 1, 1974, '{scifi}', '{"pages": 387}'),
  (3, 'Mort', 2, 1987, '{fantasy,death}', '{"pages": 243}'),
  (4, 'Anonymous pamphlet', NULL, NULL, NULL, NULL);
INSERT INTO dapi.genres VALUES (1, 'fantasy'), (2, 'science fiction');
INSERT INTO dapi.book_genres VALUES (1, 1), (2, 2), (3, 1);
INSERT INTO dapi.nodes VALUES (1, 'root', NULL), (2, 'child', 1), (3, 'grandchild', 2);

GRANT SELECT ON ALL TABLES IN SCHEMA dapi TO anonymous, webuser;
GRANT INSERT, UPDATE, DELETE ON dapi.notes, dapi.authors TO anonymous;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA dapi TO anonymous;

CREATE FUNCTION dapi.add(a int, b int) RETURNS int
  LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION dapi.books_since(y int) RETURNS SETOF dapi.books
  LANGUAGE sql STABLE AS $$ SELECT * FROM dapi.books WHERE year >= y ORDER BY id $$;
CREATE FUNCTION dapi.write_note(body text) RETURNS void
  LANGUAGE sql VOLATILE AS $$ INSERT INTO dapi.notes (body) VALUES (body) $$;
CREATE FUNCTION dapi.whoami() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'method', current_setting('request.method', true),
    'path', current_setting('request.path', true),
    'probe', current_setting('request.headers', true)::json->>'x-probe',
    'cookie', current_setting('request.cookies', true)::json->>'flavour',
    'role', current_user)
$$;
CREATE FUNCTION dapi.current_zone() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT current_setting('TimeZone')
$$;
CREATE FUNCTION dapi.greet() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM set_config('response.headers', '[{"Set-Cookie": "a=1; Path=/"}, {"Set-Cookie": "b=2"}, {"X-Greeting": "hi"}]', true);
  PERFORM set_config('response.status', '202', true);
  RETURN 'hello';
END $$;
CREATE FUNCTION dapi.pay() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE SQLSTATE 'PT402' USING MESSAGE = 'Payment Required', DETAIL = 'Quota exceeded';
END $$;
CREATE FUNCTION dapi.teapot() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE SQLSTATE 'PGRST' USING
    MESSAGE = '{"code": "T418", "message": "short and stout"}',
    DETAIL = '{"status": 418, "headers": {"X-Pot": "tea"}}';
END $$;
CREATE FUNCTION dapi.guard() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF current_setting('request.headers', true)::json->>'x-block' = 'yes' THEN
    RAISE SQLSTATE 'PT403' USING MESSAGE = 'blocked by pre-request';
  END IF;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dapi TO anonymous, webuser;
CREATE FUNCTION dapi.echo_cookies() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'cookies', current_setting('request.cookies', true)::json,
    'cookie_header', current_setting('request.headers', true)::json->>'cookie',
    'role', current_user)
$$;
GRANT EXECUTE ON FUNCTION dapi.echo_cookies() TO anonymous, webuser;
CREATE FUNCTION dapi.echo_json(json) RETURNS json LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
GRANT EXECUTE ON FUNCTION dapi.echo_json(json) TO anonymous, webuser;

-- A volatile set-returning function that writes: how often it really ran
-- is the number of rows it left behind.
CREATE TABLE dapi.logs (id serial PRIMARY KEY, msg text NOT NULL);
GRANT SELECT, INSERT ON dapi.logs TO anonymous;
GRANT USAGE ON SEQUENCE dapi.logs_id_seq TO anonymous;
CREATE FUNCTION dapi.add_log(msg text) RETURNS SETOF dapi.logs LANGUAGE sql VOLATILE AS $$
  INSERT INTO dapi.logs (msg) VALUES (msg) RETURNING *
$$;
GRANT EXECUTE ON FUNCTION dapi.add_log(text) TO anonymous;

-- A text primary key: whatever a client puts in it ends up in Location.
CREATE TABLE dapi.codes (code text PRIMARY KEY, note text);
GRANT SELECT, INSERT ON dapi.codes TO anonymous;

-- Row level security over statistics: anonymous sees its own two entries,
-- not the 300 of someone else, yet ANALYZE has seen all of them. The policy
-- compares with a sub-select, as policies often do, which the planner
-- cannot estimate: it guesses that half the rows pass.
CREATE TABLE dapi.diary (id int PRIMARY KEY, owner text NOT NULL, entry text NOT NULL);
INSERT INTO dapi.diary SELECT i, 'someone else', 'the hidden secret' FROM generate_series(1, 300) i;
INSERT INTO dapi.diary VALUES (301, 'anonymous', 'hello'), (302, 'anonymous', 'again');
ALTER TABLE dapi.diary ENABLE ROW LEVEL SECURITY;
CREATE POLICY diary_own ON dapi.diary FOR SELECT USING (owner = (SELECT current_user));
GRANT SELECT ON dapi.diary TO anonymous;
ANALYZE dapi.diary;
-- A table without RLS pointing at it: an !inner embed of diary puts
-- diary's conditions into the count's statement.
CREATE TABLE dapi.diary_marks (id int PRIMARY KEY, diary_id int NOT NULL REFERENCES dapi.diary);
INSERT INTO dapi.diary_marks SELECT i, i FROM generate_series(1, 302) i;
GRANT SELECT ON dapi.diary_marks TO anonymous;
ANALYZE dapi.diary_marks;

-- A view whose base table the catalog cannot tell: it reads a function.
CREATE FUNCTION dapi.all_books() RETURNS SETOF dapi.books LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY SELECT * FROM dapi.books;
END $$;
GRANT EXECUTE ON FUNCTION dapi.all_books() TO anonymous;
CREATE VIEW dapi.books_by_function AS SELECT * FROM dapi.all_books();
GRANT SELECT ON dapi.books_by_function TO anonymous;

-- Simple views that rename columns: a left-out column takes the default of
-- the base column it shows, whatever the names say (body here shows
-- notes.method), through a view over the view too.
CREATE VIEW dapi.notes_relabelled AS SELECT id, body AS text, method AS body FROM dapi.notes;
CREATE VIEW dapi.notes_relabelled_again AS SELECT * FROM dapi.notes_relabelled;
GRANT SELECT, INSERT ON dapi.notes_relabelled, dapi.notes_relabelled_again TO anonymous;

-- Not a simple view: it joins two tables, and a trigger does the writing,
-- so no base table default applies to what a row leaves out.
CREATE VIEW dapi.book_cards AS
  SELECT b.id, b.title, a.name AS author
    FROM dapi.books b LEFT JOIN dapi.authors a ON a.id = b.author_id;
CREATE FUNCTION dapi.book_cards_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dapi.notes (body) VALUES (NEW.title || ' by ' || coalesce(NEW.author, 'nobody'));
  RETURN NEW;
END $$;
CREATE TRIGGER book_cards_insert INSTEAD OF INSERT ON dapi.book_cards
  FOR EACH ROW EXECUTE FUNCTION dapi.book_cards_insert();
GRANT SELECT, INSERT ON dapi.book_cards TO anonymous;
