// sessiongate demo: plain fetch() with the session cookie. The cookie is
// HttpOnly, so this script never sees it; the browser sends it on every
// same-origin request, and PostgreSQL decides which rows come back.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;

async function api(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  const init = { method, headers, credentials: "same-origin" };
  // Unsafe requests always declare JSON, even without a body: the server's
  // CSRF rule refuses cookie-bearing requests that do not (docs/security.md).
  if (method !== "GET") headers["Content-Type"] = "application/json";
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.message) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(message, isError) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function renderTodos(todos) {
  const list = $("todos");
  list.replaceChildren();
  if (todos.length === 0) {
    const empty = document.createElement("li");
    empty.textContent = "Nothing to show.";
    list.append(empty);
  }
  for (const todo of todos) {
    const item = document.createElement("li");
    item.className = todo.done ? "done" : "";
    item.dataset.id = String(todo.id);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = todo.description; // textContent: user data is never HTML
    const owner = document.createElement("span");
    const mine = me && todo.user_id === me.id;
    owner.className = mine ? "badge" : "badge other";
    owner.textContent = mine ? (todo.public ? "mine, public" : "mine") : "public";
    item.append(text, owner);
    list.append(item);
  }
}

async function refresh() {
  try {
    me = await api("GET", "/api/me");
  } catch (error) {
    if (error.status !== 401) throw error;
    me = null;
  }
  $("signed-in").hidden = !me;
  $("signed-out").hidden = !!me;
  if (me) {
    $("who").textContent = me.email;
    $("role").textContent = me.role;
    const s = await api("GET", "/demo/summary");
    $("summary").textContent = `You own ${s.mine} todo(s), ${s.mine_done} done; ${s.public} public todo(s) in all.`;
  }
  renderTodos(await api("GET", "/api/todos"));
}

async function onAuth(event) {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : "login";
  const credentials = { email: $("email").value, password: $("password").value };
  try {
    if (action === "signup") {
      await api("POST", "/api/signup", credentials);
      say("Account created. Signing you in…");
    }
    await api("POST", "/api/login", credentials);
    $("password").value = "";
    say("Signed in.");
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

async function onAdd(event) {
  event.preventDefault();
  try {
    await api("POST", "/api/todos", { description: $("description").value, public: $("public").checked },
      { Prefer: "return=representation" });
    $("description").value = "";
    $("public").checked = false;
    say("Added.");
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

async function onLogout() {
  await api("POST", "/api/logout");
  say("Signed out.");
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("auth-form").addEventListener("submit", onAuth);
  $("todo-form").addEventListener("submit", onAdd);
  $("logout").addEventListener("click", () => onLogout().catch((e) => say(e.message, true)));
  refresh().catch((error) => say(error.message, true));
});
