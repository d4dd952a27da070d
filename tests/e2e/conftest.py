"""Browser tests: Playwright (pip) driving Debian's Chromium against Django's live server.

Never `playwright install`: the browser is /usr/bin/chromium (apt). Without it these tests skip on a laptop
and fail in CI (REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from playwright.sync_api import BrowserContext, Page

from tests.conftest import require_service

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run inside one
# unless told. Test-only: the web server itself never sets this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "test-results" / "screenshots"

# serialized_rollback: the flush after each live-server test would otherwise drop the seeded domains.
e2e = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    require_service(
        "Chromium", os.path.exists(CHROMIUM), f"apt-get install -y chromium (looked for {CHROMIUM})"
    )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page (a CSP violation is one); asserted empty by tests."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.fixture
def shoot() -> Callable[[Page, str], None]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str, *, full_page: bool = True) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    return take


def sign_in(context: BrowserContext, live_server, user) -> None:
    """Give a browser context the session of `user` (the sign-in form itself is tested once, in the flow)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def fresh_user(username: str, **kwargs):
    user = get_user_model().objects.create_user(
        username, f"{username}@example.org", "pw-e2e-2026-long", **kwargs
    )
    return user
