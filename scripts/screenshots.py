"""``make screenshots``: the README's console screenshots, taken by Chromium from the demo data.

Seeds the demo (``migrate``, ``seed_demo``, ``seed_interviews``: all three are idempotent) into a SQLite file
under ``var/`` (or into ``--database``, e.g. a PostgreSQL URL), serves it with ``runserver`` on a free port, signs
in as the demo personas through the login form and saves each page to ``docs/screenshots/``. Every page is
checked for what its picture is meant to show before it is taken, so a screenshot of a page that lost its
content fails the run instead of quietly going into the README.

Needs the dev extra (Playwright's Python package) and Debian's Chromium (``/usr/bin/chromium``; never
``playwright install``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/accounts/login/", timeout=5):  # noqa: S310 - our own server
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"runserver did not answer on {url}/accounts/login/") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def references(env: dict[str, str]) -> dict[str, str]:
    """The demo records the pictures show, looked up in the seeded database."""
    code = (
        "from incidents.models import Incident, Problem\n"
        "print('timeline', Incident.objects.get(external_id='demo-1').reference)\n"
        "print('classify', Incident.objects.get(external_id='demo-3').reference)\n"
        "p = Problem.objects.filter(follow_ups__isnull=False, incidents__isnull=False).distinct()"
        ".exclude(state=Problem.State.CLOSED).order_by('pk').first()\n"
        "print('problem', p.pk)\n"
    )
    out = manage(env, "shell", "-c", code)
    return dict(line.split(" ", 1) for line in out.splitlines() if line.count(" ") == 1)


def shoot(out: Path, base: str, refs: dict[str, str]) -> list[Path]:
    from playwright.sync_api import Page, expect, sync_playwright

    taken: list[Path] = []

    def save(page: Page, name: str, *, full_page: bool = True) -> None:
        width = page.viewport_size["width"] if page.viewport_size else LAPTOP["width"]
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            raise SystemExit(f"{name}: the page is {wide} px wide on a {width} px screen")
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        taken.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])

        def signed_in(username: str, viewport: dict[str, int] = LAPTOP) -> Page:
            page = browser.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
            page.goto(f"{base}/accounts/login/")
            page.locator("input[name='username']").fill(username)
            page.locator("input[name='password']").fill(f"demo-{username}-2026")
            page.locator("form button[type='submit']").first.click()
            expect(page.locator("input[name='password']")).to_have_count(0)
            return page

        # The agent: the queue by nearest deadline, with live countdowns in colour.
        page = signed_in("agent")
        page.goto(f"{base}/desk/?sort=deadline&open=1")
        countdowns = page.locator(".sla-countdown .sla-left")
        expect(countdowns.first).to_be_visible()
        if not page.locator(".sla-countdown.sla-breached").count():
            raise SystemExit("queue: the demo queue shows no breached clock")
        save(page, "console-queue-countdowns", full_page=False)

        # An incident's timeline, in words (the curated VPN outage: SLA clocks, an escalation, notifications).
        page.goto(f"{base}/desk/incidents/{refs['timeline']}/")
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("Response clock started: due")
        expect(timeline).to_contain_text("Escalated to")
        save(page, "console-timeline-in-words")

        # Classify a new report: categories of the chosen domain, the team's members, the matrix's priority.
        page.goto(f"{base}/desk/incidents/{refs['classify']}/")
        page.locator("#action-classify").click()
        form = page.locator("form[data-classify]")
        form.locator("[name='classify-category']").select_option(label="E-mail (email)")
        form.locator("[name='classify-impact']").select_option("2")
        form.locator("[name='classify-urgency']").select_option("2")
        expect(form.locator("#classify-priority-value")).to_contain_text("P")
        save(page, "console-classify")
        page.context.close()

        # The manager: an open problem with its incidents, follow-ups and the states it can move to.
        page = signed_in("manager")
        page.goto(f"{base}/desk/problems/{refs['problem']}/")
        expect(page.locator("body")).to_contain_text("Follow-up")
        save(page, "console-problems")
        page.context.close()

        # The administrator: the reports over every domain (the wards' near-miss trend included).
        page = signed_in("admin")
        page.goto(f"{base}/reports/")
        expect(page.locator("#chart-trend")).to_be_visible()
        cards = page.locator(".figure-card").evaluate_all(
            "cards => cards.map(c => [c.children[0].innerText, c.children[1].innerText])"
        )
        print("  reports:", "; ".join(f"{label} {value}" for label, value in cards))
        figures = dict(cards)
        for wanted in ("MTTA (median)", "MTTR (median)"):
            if figures.get(wanted, "0.0 h") in {"0.0 h", "—"}:
                raise SystemExit(f"reports: {wanted} is not above zero on the demo data ({cards})")
        if figures.get("Response SLA", "100.0 %") == "100.0 %":  # below 100 %: some clocks were breached
            raise SystemExit(f"reports: no response SLA breach in the demo data ({cards})")
        save(page, "reports-demo")
        page.context.close()

        # The interviewer lands on the interview sessions, on a laptop and on a phone.
        for screen, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
            page = signed_in("interviewer", viewport)
            page.goto(f"{base}/")
            expect(page.locator("h1")).to_have_text("Interview sessions")
            save(page, f"interviews-landing-{screen}")
            page.context.close()
        browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        default=f"sqlite:///{ROOT / 'var' / 'screenshots.sqlite3'}",
        help="the database to seed and show (default: a SQLite file under var/, kept between runs)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (default docs/screenshots)")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"Chromium is missing (looked for {CHROMIUM}): apt-get install -y chromium")
    (ROOT / "var").mkdir(exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": args.database, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    env.pop("REPORTS_DATABASE_URL", None)
    started = time.monotonic()
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--quiet")
    manage(env, "seed_interviews")
    print(f"Demo data ready in {time.monotonic() - started:.0f} s ({args.database})")
    refs = references(env)
    with server(env) as base:
        for path in shoot(args.out, base, refs):
            print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
