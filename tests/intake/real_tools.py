"""The real monitoring tools as child processes or threads of a test: Debian's prometheus-alertmanager (fed
with amtool) and a TLS endpoint in front of the live server for PagerDuty's client, which insists on https.
Each listens on a free loopback port and is stopped by the test that started it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .dovecot import free_port

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


def alertmanager_binary() -> str | None:
    return next((found for name in ALERTMANAGER_BINARIES if (found := shutil.which(name))), None)


@dataclass
class Alertmanager:
    port: int
    folder: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.folder / "alertmanager.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def amtool(self, *args: str) -> str:
        """Run amtool against this Alertmanager; a failure raises with amtool's own words."""
        done = subprocess.run(
            ["amtool", f"--alertmanager.url={self.url}", "--no-version-check", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"amtool {' '.join(args)} failed: {done.stderr}\n{self.log()}")
        return done.stdout

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_alertmanager(
    binary: str, *, webhook_url: str, bearer: str, repeat_interval: str = "1h"
) -> Alertmanager:
    """An Alertmanager whose only receiver is the desk's webhook, configured as an operator would: the URL
    and the routing key as a Bearer credential (http_config), nothing else."""
    folder = Path(tempfile.mkdtemp(prefix="alertmanager-test-"))
    port = free_port()
    (folder / "alertmanager.yml").write_text(
        f"""
route:
  receiver: desk
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {repeat_interval}
receivers:
  - name: desk
    webhook_configs:
      - url: "{webhook_url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{bearer}"
"""
    )
    log = (folder / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single instance
            "--log.level=debug",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Alertmanager(port, folder, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server_log = server.log()
            server.stop()
            raise RuntimeError(f"alertmanager exited: {server_log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("alertmanager did not listen in 30 s")


def wait_for(predicate, *, timeout: float = 30, what: str = "the condition", log=lambda: "") -> None:
    """Poll until predicate() is true (the tools work on their own schedule); fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{log()}")


@dataclass
class TlsEndpoint:
    """Terminates TLS on a loopback port with a self-signed certificate and relays the bytes to a plain
    HTTP port (the live server): the https endpoint PagerDuty's client insists on."""

    target_port: int
    certfile: Path
    keyfile: Path
    port: int = 0
    _listener: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TlsEndpoint:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certfile))

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            tls = self._context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        relay = threading.Thread(target=self._pump, args=(upstream, tls), daemon=True)
        relay.start()
        self._pump(tls, upstream)
        relay.join(timeout=30)
        for sock in (tls, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        with contextlib.suppress(OSError):
            if isinstance(sink, ssl.SSLSocket):
                sink.close()  # the server answered and closed: so does the client's side
            else:
                sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made by the openssl command line tool."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
