"""A real Dovecot IMAP server as a child process: its own config, base_dir, passwd-file and maildir in a
temporary folder, listening on a free loopback port, plain-text login (no TLS) for one test account."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "desk", "desk-test-pw-2026"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Dovecot:
    port: int
    folder: Path
    process: subprocess.Popen

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _accounts() -> tuple[str, str, str, str]:
    """(login user, internal user, mail uid, mail gid). As root, Dovecot needs unprivileged users for the
    login processes and the mail owner (it refuses uid 0 for mail); as anyone else it runs as that user."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, str(me.pw_uid), str(me.pw_gid)
    login = "dovenull" if _exists("dovenull") else "nobody"
    nobody = pwd.getpwnam("nobody")
    return login, "root", str(nobody.pw_uid), str(nobody.pw_gid)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def start(binary: str) -> Dovecot:
    folder = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    folder.chmod(0o755)  # the auth and mail processes run as other users and must reach their files
    port = free_port()
    login_user, internal_user, uid, gid = _accounts()
    (folder / "mail").mkdir()
    (folder / "home").mkdir()
    if os.geteuid() == 0:
        os.chown(folder / "mail", int(uid), int(gid))
        os.chown(folder / "home", int(uid), int(gid))
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::{folder}/home/{USER}::\n")
    (folder / "passwd").chmod(0o644)
    (folder / "dovecot.conf").write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = dovecot-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {folder}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{folder}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = passwd-file
  args = {folder}/passwd
  default_fields = uid={uid} gid={gid} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(folder / "dovecot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Dovecot(port, folder, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            server.stop()
            raise RuntimeError(f"dovecot exited: {error}\n{server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("dovecot did not listen in 20 s")
