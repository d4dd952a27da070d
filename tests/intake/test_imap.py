"""Polling a real IMAP server (Dovecot, started by the test) with the beat task."""

from __future__ import annotations

import imaplib

import pytest
from django.test import override_settings

from incidents.models import Incident
from intake import tasks
from intake.models import InboundEmail
from tests.conftest import require_service

from . import dovecot
from .helpers import huge_message, many_attachments, message, nested_message

pytestmark = pytest.mark.django_db
DONE = "INBOX.Processed"
REFUSED = "INBOX.Refused"


@pytest.fixture
def imap_server(attachment_dir):
    binary = dovecot.dovecot_binary()
    require_service("Dovecot IMAP server", binary is not None, "apt-get install dovecot-imapd")
    server = dovecot.start(binary)
    settings = {
        "IMAP_HOST": "127.0.0.1",
        "IMAP_PORT": server.port,
        "IMAP_TLS": False,
        "IMAP_USER": dovecot.USER,
        "IMAP_PASSWORD": dovecot.PASSWORD,
        "IMAP_FOLDER": "INBOX",
        "IMAP_DONE_FOLDER": DONE,
        "IMAP_REFUSED_FOLDER": REFUSED,
        "INTAKE_EMAIL_MAX_BYTES": 200_000,
    }
    with override_settings(**settings):
        yield server
    server.stop()


def mailbox(server) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(dovecot.USER, dovecot.PASSWORD)
    return client


def append(server, *raws: bytes) -> None:
    client = mailbox(server)
    for raw in raws:
        status, _ = client.append("INBOX", None, None, raw)
        assert status == "OK", server.log()
    client.logout()


def count(server, folder: str) -> int:
    client = mailbox(server)
    status, data = client.select(f'"{folder}"', readonly=True)
    client.logout()
    return int(data[0]) if status == "OK" else -1


def test_poll_opens_incidents_records_machines_and_moves_every_message(imap_server):
    append(
        imap_server,
        message("multipart_alternative.eml"),
        message("shift_jis.eml"),
        message("auto_reply.eml", REFERENCE="INC-000001"),
        huge_message(300_000),
    )

    result = tasks.poll_imap()

    assert result == {"handled": 3, "refused": 1, "failed": 0}, imap_server.log()
    titles = set(Incident.objects.values_list("title", flat=True))
    assert titles == {"Printer on floor 3 prints blank pages", "サーバー障害"}
    assert set(Incident.objects.values_list("channel", flat=True)) == {"email"}
    outcomes = sorted(InboundEmail.objects.values_list("outcome", "source"))
    assert outcomes == [("auto_reply", "imap"), ("created", "imap"), ("created", "imap"), ("refused", "imap")]
    assert count(imap_server, "INBOX") == 0
    assert count(imap_server, DONE) == 3
    assert count(imap_server, REFUSED) == 1  # the huge one, refused from its size without being read


def test_a_second_poll_finds_nothing_and_a_redelivered_message_is_a_duplicate(imap_server):
    append(imap_server, message("windows_1252.eml"))
    tasks.poll_imap()

    assert tasks.poll_imap() == {"handled": 0, "refused": 0, "failed": 0}
    append(imap_server, message("windows_1252.eml"))  # as after a crash between ingesting and moving
    assert tasks.poll_imap() == {"handled": 1, "refused": 0, "failed": 0}

    assert Incident.objects.count() == 1
    assert list(InboundEmail.objects.order_by("id").values_list("outcome", flat=True)) == [
        "created",
        "duplicate",
    ]
    assert count(imap_server, DONE) == 2


def test_without_move_the_message_is_copied_flagged_and_expunged(imap_server, monkeypatch):
    from intake import imap

    connect = imap._connect

    def without_move():
        client = connect()
        client.capabilities = tuple(c for c in client.capabilities if c != "MOVE")
        return client

    monkeypatch.setattr(imap, "_connect", without_move)
    append(imap_server, message("encoded_subject.eml"))

    assert tasks.poll_imap() == {"handled": 1, "refused": 0, "failed": 0}
    assert count(imap_server, "INBOX") == 0
    assert count(imap_server, DONE) == 1


def test_wrong_password_fails_loudly(imap_server):
    with override_settings(IMAP_PASSWORD="wrong"), pytest.raises(imaplib.IMAP4.error):
        tasks.poll_imap()


def test_without_imap_host_the_task_does_nothing():
    with override_settings(IMAP_HOST=""):
        assert tasks.poll_imap() == {"handled": 0, "refused": 0, "failed": 0}


def test_messages_over_the_mime_limits_are_recorded_and_moved_aside_not_retried(imap_server):
    append(
        imap_server,
        nested_message(3000, message_id="bomb@example.org"),
        many_attachments(25, message_id="files@example.org"),
        message("windows_1252.eml"),
    )

    with override_settings(INTAKE_EMAIL_MAX_ATTACHMENTS=20, INTAKE_EMAIL_MAX_BYTES=1_000_000):
        assert tasks.poll_imap() == {"handled": 1, "refused": 2, "failed": 0}, imap_server.log()
        assert tasks.poll_imap() == {"handled": 0, "refused": 0, "failed": 0}  # nothing left to retry

    refused = InboundEmail.objects.filter(outcome=InboundEmail.Outcome.REFUSED).order_by("message_id")
    assert [(r.message_id, r.source) for r in refused] == [
        ("bomb@example.org", "imap"),
        ("files@example.org", "imap"),
    ]
    assert "nested" in refused[0].detail
    assert "25 attachments, over the limit of 20" in refused[1].detail
    assert Incident.objects.count() == 1
    assert (count(imap_server, "INBOX"), count(imap_server, DONE), count(imap_server, REFUSED)) == (0, 1, 2)


def test_a_message_that_cannot_be_read_is_recorded_and_moved_aside(imap_server, monkeypatch):
    """A message that crashes the reader would crash it on every poll: it is recorded and set aside."""
    from intake import imap

    def unreadable(raw, *, source):
        raise LookupError("unknown encoding: x-mallory")

    monkeypatch.setattr(imap, "ingest", unreadable)
    append(imap_server, message("windows_1252.eml"))

    assert tasks.poll_imap() == {"handled": 0, "refused": 1, "failed": 0}
    record = InboundEmail.objects.get()
    assert record.outcome == InboundEmail.Outcome.REFUSED
    assert record.sender
    assert "x-mallory" in record.detail
    assert (count(imap_server, "INBOX"), count(imap_server, REFUSED)) == (0, 1)


def test_a_database_failure_leaves_the_message_for_the_next_poll(imap_server, monkeypatch):
    from django.db import OperationalError

    from intake import imap

    def database_down(raw, *, source):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(imap, "ingest", database_down)
    append(imap_server, message("windows_1252.eml"))

    assert tasks.poll_imap() == {"handled": 0, "refused": 0, "failed": 1}
    assert count(imap_server, "INBOX") == 1
    monkeypatch.undo()
    assert tasks.poll_imap() == {"handled": 1, "refused": 0, "failed": 0}
