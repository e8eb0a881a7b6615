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
  const answer = await response.json().catch(() => ({ message: response.statusText }));
  const error = new Error(answer.message + (answer.hint ? ` ${answer.hint}` : ""));
  error.code = answer.code;
  throw error;
}

const VERIFIED = "Your e-mail address is verified. You can sign in now.";

// A link that confirms a sign-up asks for that sign-up's password first
// (the API answers password_required); a link to a new address does not.
async function verify() {
  try {
    await post("/api/verify", { token });
    status.textContent = VERIFIED;
  } catch (error) {
    if (error.code !== "password_required") {
      status.textContent = error.message;
      return;
    }
    askPassword("verify-form", "Enter the password you signed up with to confirm this address.",
      async (password) => {
        await post("/api/verify", { token, password });
        return VERIFIED;
      });
  }
}

// Show one of the page's password forms; `submit` returns the message for success.
function askPassword(formId, prompt, submit) {
  const form = document.getElementById(formId);
  status.textContent = prompt;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const done = await submit(form.querySelector("input[type=password]").value);
      form.hidden = true;
      status.textContent = done;
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

function reset() {
  askPassword("reset-form", "Choose a new password.", async (password) => {
    await post("/api/password/reset", { token, password });
    return "Your password is set, and every session was signed out. Sign in again.";
  });
}

if (location.pathname.endsWith("/reset")) reset();
else verify();
