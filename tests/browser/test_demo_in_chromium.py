"""The demo page in a real Chromium: sign up, log in, an HttpOnly cookie, todos, and no CSRF."""

from __future__ import annotations

from typing import Any

import asyncpg

from app.tokens import new_token
from tests.browser.conftest import StaticSite
from tests.conftest import TEST_PASSWORD, LiveServer, make_client, unique_email

ATTACK_PAGE = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="post" action="{target}/api/todos" target="sink" enctype="text/plain">
  <input name='{{"description": "planted by a form", "x": "' value='"}}'>
</form>
<form id="urlencoded" method="post" action="{target}/api/logout" target="sink"></form>
<script>
const target = "{target}";
const results = {{}};
async function attempt(name, init) {{
  try {{
    const response = await fetch(target + "/api/todos", {{credentials: "include", ...init}});
    results[name] = response.type === "opaque" ? "opaque" : response.status;
  }} catch (error) {{
    results[name] = "blocked: " + error.message;
  }}
}}
(async () => {{
  await attempt("json", {{
    method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{description: "planted by fetch json"}})}});
  await attempt("text_plain", {{
    method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{description: "planted by fetch text"}})}});
  await attempt("no_body", {{method: "POST", mode: "no-cors"}});
  try {{
    const logout = await fetch(target + "/api/logout",
      {{method: "POST", mode: "no-cors", credentials: "include"}});
    results.logout = logout.type;
  }} catch (error) {{ results.logout = "blocked"; }}
  document.getElementById("form").submit();
  await new Promise((resolve) => setTimeout(resolve, 300));
  document.getElementById("urlencoded").submit();
  await new Promise((resolve) => setTimeout(resolve, 300));
  window.done = results;
}})();
</script>
</body></html>
"""


async def test_demo_page_end_to_end_and_cross_origin_attack(
    browser_context: Any,
    live_server: LiveServer,
    admin_db: asyncpg.Connection,
    other_origin: type[StaticSite],
) -> None:
    page = await browser_context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(live_server.url + "/")
    await page.wait_for_selector("#signed-out:not([hidden])")

    email = unique_email("browser")
    await page.fill("#email", email)
    await page.fill("#password", TEST_PASSWORD)
    await page.click("#signup")
    await page.wait_for_selector("#signed-in:not([hidden])")
    assert await page.text_content("#who") == email

    # The cookie is there, and HttpOnly: the page's script cannot read it.
    cookies = {c["name"]: c for c in await browser_context.cookies(live_server.url)}
    assert cookies["sessiongate"]["httpOnly"] is True
    assert cookies["sessiongate"]["sameSite"] == "Lax"
    assert "sessiongate" not in await page.evaluate("document.cookie")

    await page.fill("#description", "bought by a real browser")
    await page.click("#add")
    await page.wait_for_selector("#todos li:has-text('bought by a real browser')")
    user_id = await admin_db.fetchval("SELECT id FROM auth.users WHERE email = $1", email)
    before = await admin_db.fetchval("SELECT count(*) FROM app.todos WHERE user_id = $1", user_id)
    assert before == 1
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # A page on another origin (another port) tries to act with the cookie.
    statuses: list[tuple[str, str, int]] = []
    with other_origin(ATTACK_PAGE.format(target=live_server.url)) as site:
        attacker = await browser_context.new_page()
        attacker.on(
            "response",
            lambda r: (
                statuses.append((r.request.method, r.url, r.status))
                if r.url.startswith(live_server.url)
                else None
            ),
        )
        await attacker.goto(site.url + "/")
        await attacker.wait_for_function("window.done !== undefined", timeout=15000)
        results = await attacker.evaluate("window.done")
        await attacker.wait_for_timeout(300)

    # Nothing the attacker's page sent changed anything.
    after = await admin_db.fetchval("SELECT count(*) FROM app.todos WHERE user_id = $1", user_id)
    assert after == before, (results, statuses)
    planted = await admin_db.fetchval(
        "SELECT count(*) FROM app.todos WHERE description LIKE 'planted%'"
    )
    assert planted == 0
    # The JSON fetch needed a preflight, which granted nothing, so it never went out.
    assert str(results["json"]).startswith("blocked"), results
    # The requests that did reach the service were refused with 403.
    unsafe = [(m, u, s) for m, u, s in statuses if m == "POST"]
    assert unsafe, statuses
    assert all(status == 403 for _, _, status in unsafe), unsafe

    # Still signed in: the cross-origin logout did not happen either.
    await page.reload()
    await page.wait_for_selector("#signed-in:not([hidden])")
    assert await page.text_content("#who") == email

    # Sign out (the cookie is gone from the browser), then sign in with the form.
    await page.click("#logout")
    await page.wait_for_selector("#signed-out:not([hidden])")
    left = {c["name"] for c in await browser_context.cookies(live_server.url)}
    assert "sessiongate" not in left
    # The device cookie marks the browser, not the session: it stays, so the
    # owner is not locked out with the account (app/devices.py).
    assert "sessiongate-device" in left
    await page.fill("#email", email)
    await page.fill("#password", TEST_PASSWORD)
    await page.click("#login")
    await page.wait_for_selector("#signed-in:not([hidden])")
    await page.wait_for_selector("#todos li:has-text('bought by a real browser')")
    assert "sessiongate" not in await page.evaluate("document.cookie")


async def _signed_up_with_link(
    live_server: LiveServer, admin_db: asyncpg.Connection, purpose: str
) -> tuple[str, Any, str]:
    """A new account (email, id) and a `purpose` link's token, as the mailer
    would mint it (no mailer runs beside this server)."""
    email = unique_email(purpose)
    async with make_client(live_server.url) as http:
        body = {"email": email, "password": TEST_PASSWORD}
        assert (await http.post("/api/signup", json=body)).status_code == 201
    user_id = await admin_db.fetchval("SELECT id FROM auth.users WHERE email = $1", email)
    token, hashed = new_token()
    minted = await admin_db.fetchval(
        "SELECT auth.mint_token($1, $2, $3, NULL, 600)", user_id, purpose, hashed
    )
    assert minted == email
    return email, user_id, token


async def _open_link(
    browser_context: Any, live_server: LiveServer, purpose: str, token: str
) -> tuple[Any, list[str]]:
    """The page a `purpose` link opens (/verify, /reset), and the list its
    script errors are collected in."""
    page = await browser_context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    await page.goto(f"{live_server.url}/{purpose}#token={token}")
    return page, script_errors


async def test_a_sign_up_link_asks_for_that_sign_ups_password(
    browser_context: Any, live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    _, user_id, token = await _signed_up_with_link(live_server, admin_db, "verify")
    page, script_errors = await _open_link(browser_context, live_server, "verify", token)
    await page.wait_for_selector("#verify-form:not([hidden])")
    await page.fill("#verify-password", "not the password at all")
    await page.click("#verify-form button")
    await page.wait_for_selector("#status:has-text('not the password this sign-up was made with')")
    verified = "SELECT verified FROM auth.users WHERE id = $1"
    assert await admin_db.fetchval(verified, user_id) is False

    await page.fill("#verify-password", TEST_PASSWORD)
    await page.click("#verify-form button")
    await page.wait_for_selector("#status:has-text('is verified')")
    assert await admin_db.fetchval(verified, user_id) is True
    assert await page.is_hidden("#verify-form")
    assert script_errors == []


async def test_a_reset_link_sets_the_new_password(
    browser_context: Any, live_server: LiveServer, admin_db: asyncpg.Connection
) -> None:
    email, _, token = await _signed_up_with_link(live_server, admin_db, "reset")
    page, script_errors = await _open_link(browser_context, live_server, "reset", token)
    await page.wait_for_selector("#reset-form:not([hidden])")
    assert await page.is_hidden("#verify-form")
    await page.fill("#password", "a brand new password")
    await page.click("#reset-form button")
    await page.wait_for_selector("#status:has-text('Your password is set')")
    assert script_errors == []
    body = {"email": email, "password": TEST_PASSWORD}
    async with make_client(live_server.url) as http:
        old = await http.post("/api/login", json=body)
        new = await http.post("/api/login", json={**body, "password": "a brand new password"})
    assert (old.status_code, new.status_code) == (401, 200)
