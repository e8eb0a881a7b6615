"""Composing the account mails from the plain-text templates in app/templates/."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cache
from pathlib import Path
from string import Template

from app.config import Settings

TEMPLATE_DIR = Path(__file__).parent / "templates"

# Event kind -> template file. The first line of a template is "Subject: ...".
TEMPLATES = {
    "validate": "mail_validate.txt",
    "reset": "mail_reset.txt",
    "account_exists": "mail_account_exists.txt",
}


@dataclass(frozen=True)
class MailTemplate:
    """A subject and a body, each a string.Template over $site, $email, $link, ..."""

    subject: Template
    body: Template


@cache
def load_template(kind: str) -> MailTemplate:
    """The template for an event kind, read once."""
    text = (TEMPLATE_DIR / TEMPLATES[kind]).read_text(encoding="utf-8")
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"{TEMPLATES[kind]}: the first line must be 'Subject: ...'")
    return MailTemplate(
        Template(first.removeprefix("Subject:").strip()), Template(body.lstrip("\n"))
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    return f"{seconds} seconds"


def link(settings: Settings, path: str, token: str) -> str:
    """The public URL of a page that takes a token in its fragment."""
    return f"{settings.public_url.rstrip('/')}{path}#token={token}"


def compose(settings: Settings, kind: str, recipient: str, token: str | None) -> EmailMessage:
    """The message for one outbox event, addressed and ready to send."""
    template = load_template(kind)
    values = {
        "site": settings.public_url.rstrip("/"),
        "email": recipient,
        "reset_path": settings.reset_path,
        "link": "",
        "lifetime": "",
    }
    if kind == "validate" and token is not None:
        values["link"] = link(settings, settings.verify_path, token)
        values["lifetime"] = _duration(settings.verify_token_lifetime)
    elif kind == "reset" and token is not None:
        values["link"] = link(settings, settings.reset_path, token)
        values["lifetime"] = _duration(settings.reset_token_lifetime)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Subject"] = template.subject.safe_substitute(values)
    message["Message-ID"] = make_msgid(domain="sessiongate")
    body = template.body.safe_substitute(values)
    # 7bit keeps the link one readable, copyable line (quoted-printable would
    # fold it and turn "=" into "=3D"); non-ASCII text from an edited
    # template still gets a safe encoding.
    message.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return message
