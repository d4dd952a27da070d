"""`make run`'s stack for real: the four processes of Procfile.dev (web, Celery worker, sweeper and beat), on
SQLite and the filesystem broker, as a new user gets it. Beat prompts the auto-close sweep and the escalation
sweep, the worker and the sweeper run them, the web answers, and /health/ reports the sweep."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; stack output:\n{log.read_text()[-4000:]}")


def http(url: str, data: dict | None = None, token: str | None = None):
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data else None)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
        return response.status, json.loads(response.read() or b"null")


@pytest.fixture
def stack(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"),
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "ATTACHMENTS_ROOT": str(tmp_path / "attachments"),
        "DESK_PORT": str(port),
        "AUTO_CLOSE_SWEEP_SECONDS": "2",
        "INCIDENT_AUTO_CLOSE_HOURS": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([*manage, "seed_demo", "--quiet"], cwd=ROOT, env=env, check=True, timeout=120)
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "honcho"), "start", "--procfile", "Procfile.dev"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield {"url": f"http://127.0.0.1:{port}", "db": tmp_path / "desk.sqlite3", "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_web_worker_and_scheduler_run_together(stack):
    url, log = stack["url"], stack["log"]

    def web_up():
        try:
            return http(f"{url}/api/schema/?format=json")[0] == 200
        except OSError:
            return False

    wait_for(web_up, 60, "the web server", log)
    status, body = http(f"{url}/api/v1/auth/token/", {"username": "agent", "password": "demo-agent-2026"})
    assert status == 200
    status, page = http(f"{url}/api/v1/incidents/", token=body["token"])
    assert status == 200
    assert page["results"]

    def resolved_left():
        with sqlite3.connect(stack["db"]) as db:
            (left,) = db.execute(
                "SELECT count(*) FROM incidents_incident WHERE state = 'resolved'"
            ).fetchone()
            (auto,) = db.execute("SELECT count(*) FROM incidents_incident WHERE auto_closed").fetchone()
        return left == 0 and auto > 0

    # Beat sends the sweep every 2 s; the worker closes the demo's resolved incidents (quiet period 0).
    wait_for(resolved_left, 90, "beat and the worker to auto-close resolved incidents", log)
    output = log.read_text()
    assert "incidents.tasks.auto_close_resolved" in output

    def healthy():
        try:
            status, body = http(f"{url}/health/")
        except OSError:  # 503 (urllib raises HTTPError, an OSError) until the sweeper has run
            return False
        return status == 200 and body["sweeper_last_run_seconds_ago"] is not None

    # The fourth process: beat prompts the sweep on its own queue, the sweeper runs it, /health/ says so.
    wait_for(healthy, 60, "the sweeper to run the sweep (GET /health/ 200)", log)
    assert "escalation.tasks.sweep" in log.read_text()
