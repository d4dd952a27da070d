"""One mail path: nothing but the outbox's delivery worker talks to a mail server.

Every other module writes an outbox row (escalation.notify, through incidents.hooks.outbox()) in the
transaction that decides the mail; escalation.delivery sends it. This walks the source tree's syntax, so a new
`send_mail` anywhere (a view, a task, a management command, a settings handler) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DELIVERY_WORKER = {"escalation/delivery.py"}
SKIP_DIRS = {".venv", "venv", "node_modules", "tests", ".git", "build", "dist", "static", "staticfiles"}
# Functions and methods that send mail without the outbox: Django's helpers, User.email_user, smtplib.
SENDING_NAMES = {
    "send_mail",
    "send_mass_mail",
    "mail_admins",
    "mail_managers",
    "email_user",
    "SMTP",
    "SMTP_SSL",
}
SENDING_STRINGS = ("django.utils.log.AdminEmailHandler", "AdminEmailHandler")


def _sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        # dot-folders hold virtualenvs (.ci/run's .venv-sqlite) and tool caches, not the project's code
        if not any(part in SKIP_DIRS or part.startswith(".") for part in path.relative_to(ROOT).parts[:-1])
    )


def direct_mail(source: str) -> list[str]:
    """Every place in `source` that imports Django's mail module or smtplib, or calls a sending function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith(("django.core.mail", "smtplib"))
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {a.name for a in node.names}
            if module.startswith(("django.core.mail", "smtplib")) or (
                module == "django.core" and "mail" in names
            ):
                found.append(f"line {node.lineno}: from {module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SENDING_NAMES:
                found.append(f"line {node.lineno}: calls {name}()")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(marker in node.value for marker in SENDING_STRINGS)
        ):
            found.append(f"line {node.lineno}: names {node.value!r}")
    return found


def test_only_the_delivery_worker_sends_mail():
    offenders = {}
    for path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        if relative in DELIVERY_WORKER:
            continue
        hits = direct_mail(path.read_text(encoding="utf-8"))
        if hits:
            offenders[relative] = hits
    assert offenders == {}, "mail must go through the outbox (escalation.notify.queue_message)"


def test_the_walk_covers_the_apps_and_finds_what_it_looks_for():
    """The check itself can fail: it sees the apps' modules and each way of sending."""
    walked = {path.relative_to(ROOT).as_posix() for path in _sources()}
    assert {
        "escalation/delivery.py",
        "incidents/views/portal.py",
        "reporting/digest.py",
        "config/settings/base.py",
    } <= walked
    assert not any(p.startswith("tests/") for p in walked)
    for snippet in (
        "from django.core.mail import send_mail",
        "from django.core import mail",
        "import django.core.mail",
        "import smtplib",
        "user.email_user('s', 'b')",
        "mail_admins('s', 'm')",
        "x = send_mail('s', 'm', None, ['a@example.org'])",
        "LOGGING = {'class': 'django.utils.log.AdminEmailHandler'}",
    ):
        assert direct_mail(snippet), snippet
    assert direct_mail("from email.message import EmailMessage\nmessage = EmailMessage()") == []
