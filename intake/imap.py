"""Polling an IMAP mailbox: each message in IMAP_FOLDER is ingested, then moved to IMAP_DONE_FOLDER.

A crash between ingesting and moving is harmless: the next poll reads the message again and the
Message-ID check records it as a duplicate. Messages over the size limit are refused from their
RFC822.SIZE, without being downloaded, and moved like the others.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
from dataclasses import dataclass

from django.conf import settings

from .inbound import ingest
from .mail import MessageTooLarge
from .models import InboundEmail

logger = logging.getLogger(__name__)
SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class PollResult:
    handled: int
    failed: int


def _connect() -> imaplib.IMAP4:
    host, port = settings.IMAP_HOST, settings.IMAP_PORT
    client = (
        imaplib.IMAP4_SSL(host, port, timeout=30)
        if settings.IMAP_TLS
        else imaplib.IMAP4(host, port, timeout=30)
    )
    client.login(settings.IMAP_USER, settings.IMAP_PASSWORD)
    # Servers announce more (MOVE among them) once logged in; imaplib keeps the greeting's list.
    _, data = client.capability()
    client.capabilities = tuple(data[0].decode().upper().split()) if data and data[0] else client.capabilities
    return client


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _move(client: imaplib.IMAP4, uid: bytes, done: str) -> None:
    if "MOVE" in client.capabilities:  # RFC 6851; otherwise copy, flag and expunge
        status, _ = client.uid("MOVE", uid.decode(), _quote(done))
        if status == "OK":
            return
    client.uid("COPY", uid.decode(), _quote(done))
    client.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)")
    client.expunge()


def poll() -> PollResult:
    """Handle every message waiting in the folder. Returns how many were handled and how many failed."""
    if not settings.IMAP_HOST:
        return PollResult(0, 0)
    client = _connect()
    handled = failed = 0
    try:
        client.create(_quote(settings.IMAP_DONE_FOLDER))  # NO when it exists: fine
        status, _ = client.select(_quote(settings.IMAP_FOLDER))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select {settings.IMAP_FOLDER}")
        _, data = client.uid("SEARCH", "ALL")
        for uid in (data[0] or b"").split():
            try:
                _handle(client, uid)
            except Exception:
                failed += 1
                logger.exception(
                    "IMAP message %s could not be handled; it stays in %s", uid, settings.IMAP_FOLDER
                )
                continue
            _move(client, uid, settings.IMAP_DONE_FOLDER)
            handled += 1
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return PollResult(handled, failed)


def _handle(client: imaplib.IMAP4, uid: bytes) -> None:
    _, meta = client.uid("FETCH", uid.decode(), "(RFC822.SIZE)")
    match = SIZE_RE.search(b" ".join(m if isinstance(m, bytes) else b" ".join(m) for m in meta if m))
    size = int(match.group(1)) if match else 0
    if size > settings.INTAKE_EMAIL_MAX_BYTES:
        InboundEmail.objects.create(
            size=size, source="imap", outcome=InboundEmail.Outcome.REFUSED,
            detail=f"The message is {size} bytes, over the limit of {settings.INTAKE_EMAIL_MAX_BYTES} bytes; it was not read.",
        )  # fmt: skip
        return
    _, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
    raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), b"")
    with contextlib.suppress(MessageTooLarge):  # recorded by ingest; moved like any handled message
        ingest(raw, source="imap")
