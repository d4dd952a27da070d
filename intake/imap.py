"""Polling an IMAP mailbox: each message in IMAP_FOLDER is ingested, then moved to IMAP_DONE_FOLDER.

A crash between ingesting and moving is harmless: the next poll reads the message again and the
Message-ID check records it as a duplicate. A refused message (over the size limit, judged from its
RFC822.SIZE without being downloaded; nested too deep; too many attachments) and one the reader cannot
read at all are recorded and moved to IMAP_REFUSED_FOLDER, so no poll tries them again. Only a database
failure, which is temporary, leaves the message where it is for the next poll.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError

from .inbound import ingest, record_refused
from .mail import MessageRefused
from .models import InboundEmail

logger = logging.getLogger(__name__)
SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class PollResult:
    handled: int  # moved to IMAP_DONE_FOLDER
    refused: int  # recorded as refused and moved to IMAP_REFUSED_FOLDER
    failed: int  # left in IMAP_FOLDER for the next poll (the database was unavailable)


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
    """Handle every message waiting in the folder: handled ones go to the done folder, refused ones to the
    refused folder, and only those that met a database failure stay for the next poll."""
    if not settings.IMAP_HOST:
        return PollResult(0, 0, 0)
    client = _connect()
    handled = refused = failed = 0
    try:
        for folder in (settings.IMAP_DONE_FOLDER, settings.IMAP_REFUSED_FOLDER):
            client.create(_quote(folder))  # NO when it exists: fine
        status, _ = client.select(_quote(settings.IMAP_FOLDER))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select {settings.IMAP_FOLDER}")
        _, data = client.uid("SEARCH", "ALL")
        for uid in (data[0] or b"").split():
            try:
                accepted = _handle(client, uid)
            except DatabaseError:
                failed += 1
                logger.exception(
                    "IMAP message %s could not be handled; it stays in %s", uid, settings.IMAP_FOLDER
                )
                continue
            if accepted:
                _move(client, uid, settings.IMAP_DONE_FOLDER)
                handled += 1
            else:
                _move(client, uid, settings.IMAP_REFUSED_FOLDER)
                refused += 1
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return PollResult(handled, refused, failed)


def _handle(client: imaplib.IMAP4, uid: bytes) -> bool:
    """Ingest one message; False when it was refused (and recorded)."""
    _, meta = client.uid("FETCH", uid.decode(), "(RFC822.SIZE)")
    match = SIZE_RE.search(b" ".join(m if isinstance(m, bytes) else b" ".join(m) for m in meta if m))
    size = int(match.group(1)) if match else 0
    if size > settings.INTAKE_EMAIL_MAX_BYTES:
        InboundEmail.objects.create(
            size=size, source="imap", outcome=InboundEmail.Outcome.REFUSED,
            detail=f"The message is {size} bytes, over the limit of {settings.INTAKE_EMAIL_MAX_BYTES} bytes; it was not read.",
        )  # fmt: skip
        return False
    _, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
    raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) == 2), b"")
    try:
        ingest(raw, source="imap")
    except MessageRefused:
        return False  # recorded by ingest
    except DatabaseError:
        raise
    except Exception as exc:
        # A message that crashes the reader would crash it on every poll: record it and set it aside.
        logger.exception(
            "IMAP message %s could not be read; it is moved to %s", uid, settings.IMAP_REFUSED_FOLDER
        )
        record_refused(
            raw, source="imap", detail=f"The message could not be read: {type(exc).__name__}: {exc}"
        )
        return False
    return True
