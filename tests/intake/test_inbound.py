"""Inbound e-mail to incidents: new messages, threaded replies, reopening, machines and limits."""

from __future__ import annotations

import io
import sys

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import override_settings

from escalation.models import Notification
from incidents import lifecycle
from incidents.models import Attachment, Comment, Incident, TimelineEntry
from intake.inbound import ingest
from intake.mail import MessageRefused, MessageTooLarge
from intake.models import InboundEmail
from tests.factories import UserFactory, incident_in, responder_of

from .helpers import huge_message, many_attachments, message, nested_message

pytestmark = pytest.mark.django_db
Outcome = InboundEmail.Outcome


@pytest.fixture(autouse=True)
def _attachments(attachment_dir):
    return attachment_dir


def resolved_for_alice(reporter=None):
    kwargs = {"reporter": reporter} if reporter else {"reporter_email": "alice@example.org"}
    return incident_in(Incident.State.RESOLVED, **kwargs)


def test_a_new_message_opens_an_incident_from_an_unknown_sender():
    record = ingest(message("multipart_alternative.eml"))

    assert record.outcome == Outcome.CREATED
    incident = record.incident
    assert incident.state == Incident.State.RECEIVED
    assert incident.channel == Incident.Channel.EMAIL
    assert incident.title == "Printer on floor 3 prints blank pages"
    assert incident.reporter is None
    assert incident.reporter_email == "alice@example.org"
    assert "toner is full" in incident.description
    assert record.message_id == "20260302091200.1234@mail.example.org"


def test_a_known_sender_becomes_the_reporter():
    alice = UserFactory(username="alice", email="Alice@Example.org")

    incident = ingest(message("html_only.eml").replace(b"bob@example.org", b"alice@example.org")).incident

    assert incident.reporter == alice
    assert "<script" not in incident.description_html
    assert "token invalid" in incident.description


def test_attachments_obey_the_upload_rules():
    record = ingest(message("attachments.eml"))

    (kept,) = Attachment.objects.filter(incident=record.incident)
    assert kept.filename == "backup.log"
    assert kept.public
    assert "fix.exe: Files of type .exe are not accepted" in record.detail


@override_settings(ATTACHMENT_MAX_BYTES=50)
def test_attachments_over_the_upload_limit_are_refused_and_named():
    record = ingest(message("attachments.eml"))

    assert not Attachment.objects.exists()
    assert "backup.log: The file is larger than" in record.detail


@pytest.mark.parametrize(
    "name", ["iso_8859_1.eml", "windows_1252.eml", "shift_jis.eml", "encoded_subject.eml"]
)
def test_every_charset_of_the_corpus_opens_a_readable_incident(name):
    incident = ingest(message(name)).incident

    assert incident.title
    assert "\ufffd" not in incident.title + incident.description


def test_reply_by_subject_is_a_public_comment_and_still_broken_reopens():
    incident = resolved_for_alice()

    record = ingest(message("reply_by_subject.eml", REFERENCE=incident.reference))

    assert record.outcome == Outcome.REOPENED
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESPONDING
    assert incident.reopen_count == 1
    comment = Comment.objects.get(incident=incident)
    assert comment.public
    assert comment.body == "Sorry, it is still broken: the pages are still blank."
    reopen = TimelineEntry.objects.get(incident=incident, action="reopen")
    assert "still broken" in reopen.data["reason"]


def test_a_registered_reporter_reopens_as_themself():
    alice = UserFactory(email="alice@example.org")
    incident = resolved_for_alice(reporter=alice)

    ingest(message("reply_by_subject.eml", REFERENCE=incident.reference))

    assert TimelineEntry.objects.get(incident=incident, action="reopen").actor == alice
    assert Comment.objects.get(incident=incident).author == alice


@override_settings(INTAKE_EMAIL_REOPEN="never")
def test_reopening_by_mail_can_be_turned_off():
    incident = resolved_for_alice()

    record = ingest(message("reply_by_subject.eml", REFERENCE=incident.reference))

    assert record.outcome == Outcome.COMMENTED
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


def test_a_plain_thank_you_does_not_reopen():
    incident = resolved_for_alice()
    raw = message("reply_by_subject.eml", REFERENCE=incident.reference).replace(
        b"Sorry, it is still broken: the pages are still blank.", b"Thanks, works now."
    )

    assert ingest(raw).outcome == Outcome.COMMENTED
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


def test_reply_by_in_reply_to_a_notification_we_sent():
    incident = incident_in(Incident.State.ESCALATED, reporter_email="alice@example.org")
    Notification.objects.create(
        key="n-7f3a9c", incident=incident, event="escalated", channel="email", recipient="alice@example.org"
    )

    record = ingest(message("reply_in_reply_to.eml", NOTIFICATION_KEY="n-7f3a9c"))

    assert record.outcome == Outcome.COMMENTED
    assert record.incident == incident
    assert Comment.objects.get(incident=incident).body == "Thanks, the paper tray is now also jammed."


def test_a_stranger_quoting_a_reference_is_recorded_not_commented():
    incident = resolved_for_alice()
    raw = message("reply_by_subject.eml", REFERENCE=incident.reference).replace(b"alice@", b"mallory@")

    record = ingest(raw)

    assert record.outcome == Outcome.REFUSED
    assert "neither the reporter" in record.detail
    assert not Comment.objects.exists()
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


def test_a_responder_replying_by_mail_adds_an_internal_note():
    incident = resolved_for_alice()
    responder = responder_of(incident)
    raw = message("reply_by_subject.eml", REFERENCE=incident.reference).replace(
        b"alice@example.org", responder.email.encode()
    )

    record = ingest(raw)

    assert record.outcome == Outcome.COMMENTED
    comment = Comment.objects.get(incident=incident)
    assert (comment.author, comment.public) == (responder, False)
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


def test_a_responders_reply_keeps_its_attachments_internal_too():
    """An internal note's files must not reach the reporter's portal."""
    incident = resolved_for_alice()
    responder = responder_of(incident)
    raw = (
        message("attachments.eml")
        .replace(b"carol@example.org", responder.email.encode())
        .replace(
            b"Subject: Backup job fails", f"Subject: Re: [{incident.reference}] Backup job fails".encode()
        )
    )

    record = ingest(raw)

    assert record.outcome == Outcome.COMMENTED
    (kept,) = Attachment.objects.filter(incident=incident)
    assert (kept.filename, kept.public) == ("backup.log", False)
    assert Comment.objects.get(incident=incident).public is False


def test_a_reply_to_a_closed_incident_opens_a_follow_up():
    incident = incident_in(Incident.State.CLOSED, reporter_email="alice@example.org")

    record = ingest(message("reply_by_subject.eml", REFERENCE=incident.reference))

    assert record.outcome == Outcome.CREATED
    assert record.incident != incident
    assert f"Follow-up by e-mail to {incident.reference}, which is closed." in record.incident.description
    assert record.incident.title.startswith(f"[{incident.reference}] Resolved")


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("auto_reply.eml", Outcome.AUTO_REPLY),
        ("precedence_bulk.eml", Outcome.AUTO_REPLY),
        ("bounce.eml", Outcome.BOUNCE),
    ],
)
def test_machines_are_recorded_and_never_answered(name, outcome):
    incident = resolved_for_alice()
    mail.outbox.clear()

    record = ingest(message(name, REFERENCE=incident.reference))

    assert record.outcome == outcome
    assert Incident.objects.count() == 1
    assert not Comment.objects.exists()
    assert mail.outbox == []
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED  # "still broken" in an out-of-office does not reopen


def test_the_same_message_twice_is_handled_once():
    first = ingest(message("multipart_alternative.eml"))

    second = ingest(message("multipart_alternative.eml"))

    assert second.outcome == Outcome.DUPLICATE
    assert second.incident == first.incident
    assert Incident.objects.count() == 1


def test_a_message_without_a_sender_is_refused():
    record = ingest(b"Subject: hello\r\n\r\nbody\r\n")

    assert record.outcome == Outcome.REFUSED
    assert not Incident.objects.exists()


def test_a_sender_address_django_refuses_is_recorded_not_a_crash():
    raw = message("multipart_alternative.eml").replace(b"alice@example.org", b"alice@bad_domain.org")

    record = ingest(raw)

    assert record.outcome == Outcome.REFUSED
    assert "valid e-mail address" in record.detail or "valid email address" in record.detail


@override_settings(INTAKE_EMAIL_MAX_BYTES=100_000)
def test_a_huge_message_is_refused_and_recorded():
    with pytest.raises(MessageTooLarge):
        ingest(huge_message(150_000))

    record = InboundEmail.objects.get()
    assert record.outcome == Outcome.REFUSED
    assert record.size > 150_000
    assert not Incident.objects.exists()


def stdin_with(monkeypatch, raw: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))


def test_ingest_email_command_reads_stdin(monkeypatch):
    stdin_with(monkeypatch, message("windows_1252.eml"))
    out = io.StringIO()

    call_command("ingest_email", stdout=out)

    incident = Incident.objects.get()
    assert out.getvalue().strip() == f"created {incident.reference}"
    assert "\u20ac" in incident.description


@override_settings(INTAKE_EMAIL_MAX_BYTES=100_000)
def test_ingest_email_command_refuses_huge_with_a_bounce_exit_status(monkeypatch):
    stdin_with(monkeypatch, huge_message(150_000))

    with pytest.raises(CommandError, match="over the limit of 100000 bytes") as caught:
        call_command("ingest_email")

    assert caught.value.returncode == 65
    assert InboundEmail.objects.get().outcome == Outcome.REFUSED


def test_lifecycle_reopen_rules_still_hold_for_mail():
    """Only a resolved incident reopens: a reply to a responding one is just a comment."""
    incident = incident_in(Incident.State.RESPONDING, reporter_email="alice@example.org")

    record = ingest(message("reply_by_subject.eml", REFERENCE=incident.reference))

    assert record.outcome == Outcome.COMMENTED
    assert lifecycle.allowed_actions(Incident.objects.get(pk=incident.pk))


def test_a_reply_to_a_delivered_notification_threads_by_its_message_id():
    from escalation.delivery import deliver

    incident = incident_in(Incident.State.ESCALATED, reporter_email="alice@example.org")
    notification = Notification.objects.create(
        key="b1946ac92492d2347c6235b4d2611184", incident=incident, event="escalated", channel="email",
        recipient="alice@example.org", subject=f"[{incident.reference}] Escalated", body="Escalated.",
    )  # fmt: skip
    mail.outbox.clear()
    assert deliver(notification.pk) == "sent"
    sent_id = mail.outbox[0].message()["Message-ID"]
    raw = (
        f"From: alice@example.org\r\nTo: desk@localhost\r\nSubject: Re: Escalated\r\n"
        f"Message-ID: <r1@example.org>\r\nIn-Reply-To: {sent_id}\r\nReferences: {sent_id}\r\n\r\n"
        "Any news?\r\n\r\n> Escalated.\r\n"
    ).encode()

    record = ingest(raw)

    assert record.incident == incident
    assert Comment.objects.get(incident=incident).body == "Any news?"


def test_nul_characters_in_a_message_are_dropped():
    raw = message("multipart_alternative.eml").replace(b"Subject: Printer", b"Subject: Prin\x00ter")

    incident = ingest(raw).incident

    assert incident.title == "Printer on floor 3 prints blank pages"


@override_settings(INTAKE_EMAIL_MAX_MIME_DEPTH=5)
def test_mime_nesting_up_to_the_limit_is_read():
    record = ingest(nested_message(5))

    assert record.outcome == Outcome.CREATED
    assert "The disk is full." in record.incident.description


@override_settings(INTAKE_EMAIL_MAX_MIME_DEPTH=5)
def test_mime_nesting_over_the_limit_is_refused_and_recorded():
    with pytest.raises(MessageRefused, match="nested 6 levels deep, over the limit of 5"):
        ingest(nested_message(6))

    record = InboundEmail.objects.get()
    assert (record.outcome, record.sender, record.subject) == (
        Outcome.REFUSED,
        "mallory@example.org",
        "Nested 6 deep",
    )
    assert record.message_id == "deep@example.org"
    assert "over the limit of 5" in record.detail
    assert not Incident.objects.exists()


def test_a_message_nested_thousands_of_levels_deep_is_refused_not_a_crash(monkeypatch):
    stdin_with(monkeypatch, nested_message(3000))

    with pytest.raises(CommandError, match="nested") as caught:
        call_command("ingest_email")

    assert caught.value.returncode == 65
    record = InboundEmail.objects.get()
    assert record.outcome == Outcome.REFUSED
    assert record.sender == "mallory@example.org"
    assert not Incident.objects.exists()


@override_settings(INTAKE_EMAIL_MAX_ATTACHMENTS=3)
def test_attachments_up_to_the_cap_are_kept():
    record = ingest(many_attachments(3))

    assert record.outcome == Outcome.CREATED
    assert record.incident.attachments.count() == 3


@override_settings(INTAKE_EMAIL_MAX_ATTACHMENTS=3)
def test_a_message_over_the_attachment_cap_is_refused_with_a_bounce_exit_status(monkeypatch):
    stdin_with(monkeypatch, many_attachments(4))

    with pytest.raises(CommandError, match="4 attachments, over the limit of 3") as caught:
        call_command("ingest_email")

    assert caught.value.returncode == 65
    record = InboundEmail.objects.get()
    assert (record.outcome, record.subject) == (Outcome.REFUSED, "Logs attached")
    assert not Incident.objects.exists()
    assert not Attachment.objects.exists()


def test_nested_attachments_count_towards_the_cap():
    inner = many_attachments(3).split(b"\r\n\r\n", 1)[1]  # the multipart body of three attachments
    raw = (
        b"From: carol@example.org\r\nSubject: Nested logs\r\nMessage-ID: <nested-logs@example.org>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b'--outer\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n' + inner + b"--outer\r\n"
        b'Content-Type: text/plain; name="x.txt"\r\nContent-Disposition: attachment; filename="x.txt"\r\n\r\nx\r\n'
        b"--outer--\r\n"
    )

    with (
        override_settings(INTAKE_EMAIL_MAX_ATTACHMENTS=3),
        pytest.raises(MessageRefused, match="4 attachments"),
    ):
        ingest(raw)
