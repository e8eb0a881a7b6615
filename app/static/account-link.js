// The pages the account mails link to (demo mode): /verify#token=... and
// /reset#token=.... The token is in the fragment, so it never reaches a
// server log; this script reads it and POSTs it to the API.
"use strict";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const status = document.getElementById("status");
// Drop the token from the address bar and the history once read.
history.replaceState(null, "", location.pathname);

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.ok) return;
  const error = await response.json().catch(() => ({ message: response.statusText }));
  throw new Error(error.message + (error.hint ? ` ${error.hint}` : ""));
}

async function verify() {
  try {
    await post("/api/verify", { token });
    status.textContent = "Your e-mail address is verified. You can sign in now.";
  } catch (error) {
    status.textContent = error.message;
  }
}

function reset() {
  const form = document.getElementById("reset-form");
  status.textContent = "Choose a new password.";
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post("/api/password/reset", { token, password: document.getElementById("password").value });
      form.hidden = true;
      status.textContent = "Your password is set, and every session was signed out. Sign in again.";
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

if (location.pathname.endsWith("/reset")) reset();
else verify();
