"""Real processes for the escalation integration tests and the lateness bench.

A Redis server of our own on a free loopback port (never the machine's shared one on 6379), `celery worker`
and `celery beat` as child processes with pidfiles (killed by PID, pool children found with `pgrep -P`),
an SMTP server in this process (aiosmtpd) that records each message's Message-ID, and the webhook receiver
of tests/escalation/receiver.py. The children run config.settings.test with TEST_REAL_SERVICES=1, which
keeps base.py's broker and e-mail settings from their environment (see config/settings/test.py).
"""

from __future__ import annotations

import asyncio
import email
import email.parser
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")
# As base.py sets them for a Redis broker; used for this process's own publishing (see `in_process_broker`).
REDIS_TRANSPORT_OPTIONS = {
    "visibility_timeout": 300,
    "unacked_restore_throttle": 1,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None


def have_aiosmtpd() -> bool:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, details: Callable[[], str] = lambda: ""
) -> T:
    """Poll `predicate` every 0.2 s until it returns something true; fail with `details()` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")
        time.sleep(0.2)


class Child:
    """A child process with its own log file; killed by PID (and its children by `pgrep -P`)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, pidfile: Path | None = None
    ) -> None:
        self.name, self.log, self.pidfile = name, log, pidfile
        self.meant_to_stop = False  # killed or stopped on purpose (not a crash)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in found.stdout.split()]

    def kill(self, *, children: bool = True) -> list[int]:
        """SIGKILL the main process and (by default) its children, by PID. Returns the PIDs killed."""
        self.meant_to_stop = True
        pids = self.children() if children else []
        for pid in [self.pid, *pids]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in pids:
            _wait_gone(pid)
        return [self.pid, *pids]

    def tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} ({self.log}) ---\n{self.log.read_text(errors='replace')[-chars:]}"
        except OSError:
            return ""


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A killed child of a process that was killed too is reaped by init; until then it is a zombie.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.05)


class RedisServer:
    """redis-server on its own loopback port, no persistence (a crash loses what it held, as the fault asks)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir, self.port = workdir, port or free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        self.child = Child("redis", argv, dict(os.environ), self.workdir / "redis.log")
        wait_until(self.ping, 20, f"redis-server on port {self.port}", self.child.tail)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.child is not None and self.child.alive():
            self.child.kill()

    def stop(self) -> None:
        self.kill()


class SmtpSink:
    """An SMTP server in this process (aiosmtpd); records each message with its Message-ID and arrival time."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each message takes to accept (a remote mail server's latency)
        self.controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.delay:
                    await asyncio.sleep(sink.delay)
                at = time.time()
                # The headers are all it reads: parsing the body too is CPU the senders are measured on.
                message = email.parser.BytesHeaderParser().parsebytes(envelope.content)
                message_id = str(message.get("Message-ID", "")).strip().strip("<>")
                record = {
                    "at": at, "key": message_id.split("@", 1)[0], "message_id": message_id,
                    "to": list(envelope.rcpt_tos), "subject": str(message.get("Subject", "")),
                    "event": str(message.get("X-IncidentDesk-Event", "")),
                    "reference": str(message.get("X-IncidentDesk-Reference", "")),
                }  # fmt: skip
                with sink.lock:
                    sink.messages.append(record)
                return "250 Message accepted for delivery"

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.controller.start()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def effects(self) -> dict[str, dict[str, Any]]:
        first: dict[str, dict[str, Any]] = {}
        with self.lock:
            for message in self.messages:
                first.setdefault(message["key"], message)
        return first

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def database_url(settings_dict: dict[str, Any]) -> str:
    """postgres://user[:password]@host:port/name of a Django connection (the test database in tests)."""
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def _reset_publisher(app: Any) -> None:
    if app._pool is not None:
        with suppress(Exception):  # a pool on a dead broker may not close cleanly; it is dropped anyway
            app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


@contextmanager
def in_process_broker(url: str) -> Iterator[None]:
    """Make this process publish to `url` (the web side of the stack: lifecycle and API enqueue there)."""
    from config.celery import app

    conf = app.conf
    old = conf.broker_url, conf.broker_transport_options
    _reset_publisher(app)
    conf.broker_url, conf.broker_transport_options = url, dict(REDIS_TRANSPORT_OPTIONS)
    try:
        yield
    finally:
        _reset_publisher(app)
        conf.broker_url, conf.broker_transport_options = old
        _reset_publisher(app)


class Stack:
    """Redis + SMTP + webhook receiver + celery worker(s) and beat(s), for one test or one bench run."""

    def __init__(
        self,
        workdir: Path,
        database: str,
        *,
        receiver: Any,
        sweep_seconds: float = 1,
        backoff: str = "1,2,4",
        lease_seconds: int = 5,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
        worker_args: tuple[str, ...] = (),
        sweeper: bool = False,
    ) -> None:
        self.workdir, self.database, self.receiver = workdir, database, receiver
        self.sweep_seconds, self.backoff, self.lease_seconds = sweep_seconds, backoff, lease_seconds
        self.concurrency, self.extra_env, self.worker_args = concurrency, extra_env or {}, worker_args
        self.redis = RedisServer(workdir)
        self.smtp = SmtpSink()
        self.workers: list[Child] = []
        self.beats: list[Child] = []
        # As in Procfile.dev and docker-compose.yml: a worker of its own for the sweep queue, the others
        # take only deliveries. Without it every worker takes both queues.
        self.sweeper = sweeper
        self.sweepers: list[Child] = []
        self._started = 0
        self._broker: Any = None
        self.crashes: list[tuple[str, int | None, str]] = []

    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "REDIS_", "EMAIL_", "TEST_", "SLA_"))
            and not k.startswith(("NOTIFICATION_", "WEBHOOK_", "PYTEST_"))
        }
        return {
            **keep,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "TEST_REAL_SERVICES": "1",
            "DATABASE_URL": self.database,
            "CELERY_BROKER_URL": self.redis.url,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "SLA_SWEEP_SECONDS": str(self.sweep_seconds),
            "NOTIFICATION_BACKOFF_SECONDS": self.backoff,
            "NOTIFICATION_LEASE_SECONDS": str(self.lease_seconds),
            "WEBHOOK_TIMEOUT_SECONDS": "10",
            **self.extra_env,
        }

    def _next(self, kind: str) -> str:
        self._started += 1
        return f"{kind}{self._started}"

    def _worker(self, name: str, queues: str, concurrency: int) -> Child:
        argv = [
            str(BIN / "celery"), "-A", "config", "worker", "-l", "INFO", "-n", f"{name}@%h",
            "--pool", "prefork", "--concurrency", str(concurrency), "--queues", queues,
            "--pidfile", str(self.workdir / f"{name}.pid"),
            "--without-gossip", "--without-mingle", "--without-heartbeat", *self.worker_args,
        ]  # fmt: skip
        return Child(name, argv, self.env(), self.workdir / f"{name}.log", self.workdir / f"{name}.pid")

    def start_worker(self, *, wait: bool = True) -> Child:
        child = self._worker(
            self._next("worker"), "urgent,celery" if self.sweeper else "urgent,celery,sweep", self.concurrency
        )
        self.workers.append(child)
        if wait:
            self._wait_up(child)
        return child

    def start_sweeper(self, *, wait: bool = True) -> Child:
        child = self._worker(self._next("sweeper"), "sweep", 1)
        self.sweepers.append(child)
        if wait:
            self._wait_up(child)
        return child

    def start_beat(self, *, wait: bool = True) -> Child:
        name = self._next("beat")
        argv = [
            str(BIN / "celery"), "-A", "config", "beat", "-l", "INFO",
            "--schedule", str(self.workdir / f"{name}-schedule"),
            "--pidfile", str(self.workdir / f"{name}.pid"),
        ]  # fmt: skip
        child = Child(name, argv, self.env(), self.workdir / f"{name}.log", self.workdir / f"{name}.pid")
        self.beats.append(child)
        if wait:
            self._wait_up(child)
        return child

    def start(self, *, workers: int = 1, beats: int = 1) -> None:
        """Start workers and beats side by side, then wait until each is up."""
        started = [self.start_worker(wait=False) for _ in range(workers)]
        started += [self.start_sweeper(wait=False)] if self.sweeper else []
        started += [self.start_beat(wait=False) for _ in range(beats)]
        for child in started:
            self._wait_up(child)

    def _wait_up(self, child: Child) -> None:
        marker = "beat: Starting" if child in self.beats else "ready."
        wait_until(
            lambda: marker in child.log.read_text(errors="replace") or not child.alive(),
            90, f"{child.name} to start", child.tail,
        )  # fmt: skip
        assert child.alive(), child.tail()
        if child.pidfile is not None:  # the PID we kill is the one the process wrote in its pidfile
            wait_until(lambda: child.pidfile.is_file() and child.pidfile.read_text().strip(), 30,
                       f"{child.name}'s pidfile", child.tail)  # fmt: skip
            assert int(child.pidfile.read_text()) == child.pid, child.tail()
        if child in self.workers:
            wait_until(
                lambda: len(child.children()) >= self.concurrency, 30, f"{child.name}'s pool", child.tail
            )

    def supervise(self) -> None:
        """Restart a worker or beat that exited by itself, as the compose file's `restart: unless-stopped`
        does, and remember it in `crashes` (name, exit code, the log's last error line)."""
        groups = (
            (self.workers, self.start_worker),
            (self.sweepers, self.start_sweeper),
            (self.beats, self.start_beat),
        )
        for group, start in groups:
            for child in list(group):
                if child.alive() or child.meant_to_stop:
                    continue
                child.meant_to_stop = True
                errors = [
                    line for line in child.log.read_text(errors="replace").splitlines()
                    if "CRITICAL" in line or "Unrecoverable" in line
                ]  # fmt: skip
                self.crashes.append((child.name, child.process.returncode, errors[-1] if errors else ""))
                start(wait=False)

    def live(self, children: list[Child]) -> list[Child]:
        return [c for c in children if c.alive()]

    def logs(self) -> str:
        parts = [c.tail() for c in [*self.workers, *self.sweepers, *self.beats]]
        if self.redis.child is not None:
            parts.append(self.redis.child.tail(800))
        return "\n".join(parts)

    def __enter__(self) -> Stack:
        try:
            self.redis.start()
            self.smtp.start()
            self._broker = in_process_broker(self.redis.url)
            self._broker.__enter__()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for child in [*self.beats, *self.sweepers, *self.workers]:
            if child.alive():
                child.kill()
        self.redis.stop()
        self.smtp.stop()
        if self._broker is not None:
            self._broker.__exit__(None, None, None)
            self._broker = None

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- Measuring: what was due, what the engine decided, what reached the wire --------------------------------


def arrivals(stack: Stack) -> dict[str, list[float]]:
    """Idempotency key -> arrival times (epoch seconds) of every message the SMTP server and the webhook
    receiver accepted, duplicates included."""
    found: dict[str, list[float]] = {}
    with stack.smtp.lock:
        for message in stack.smtp.messages:
            found.setdefault(message["key"], []).append(message["at"])
    with stack.receiver.lock:
        for request in stack.receiver.requests:
            found.setdefault(request["key"], []).append(request["at"])
    return found


def cause_of_notifications(incident_ids: list[int]) -> dict[str, Any]:
    """Notification key -> the Timer whose decision created it (keys are derived from the timer's key)."""
    from escalation.models import Notification, Timer
    from escalation.notify import _key

    timers: dict[int, list[Any]] = {}
    for timer in Timer.objects.filter(incident_id__in=incident_ids, state=Timer.State.FIRED):
        timers.setdefault(timer.incident_id, []).append(timer)
    causes = {}
    for row in Notification.objects.filter(incident_id__in=incident_ids).only(
        "key", "incident_id", "channel", "recipient"
    ):
        for timer in timers.get(row.incident_id, []):
            if _key(timer.key, row.channel, row.recipient) == row.key:
                causes[row.key] = timer
                break
    return causes


def lateness(stack: Stack, incident_ids: list[int], kinds: tuple[str, ...] = ()) -> dict[str, list[float]]:
    """Seconds after due: `fired` = fired_at - due_at of each fired timer (both the database's clock),
    `delivered` = first arrival - due_at of each notification a timer caused (the receivers' clock)."""
    from escalation.models import Timer

    fired_timers = Timer.objects.filter(incident_id__in=incident_ids, state=Timer.State.FIRED)
    if kinds:
        fired_timers = fired_timers.filter(kind__in=kinds)
    fired = [(t.fired_at - t.due_at).total_seconds() for t in fired_timers]
    seen = arrivals(stack)
    delivered = [
        min(seen[key]) - timer.due_at.timestamp()
        for key, timer in cause_of_notifications(incident_ids).items()
        if key in seen and (not kinds or timer.kind in kinds)
    ]
    return {"fired": fired, "delivered": delivered}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[rank]


def describe(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"n={len(values)} p50={percentile(values, 50):.2f}s p99={percentile(values, 99):.2f}s "
        f"max={max(values):.2f}s min={min(values):.2f}s"
    )
