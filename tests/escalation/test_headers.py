"""A CR/LF (or any control character) in what a subject is built from never stops an incident's mail.

Each case goes through the real delivery task (`escalation.tasks.deliver_notification`), once with the
locmem backend and once to an SMTP server (aiosmtpd in this process, as the real-worker tests use).
"""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy

import pytest
import time_machine
from django.core import mail

from escalation import tasks
from escalation.engine import sweep
from escalation.headers import SUBJECT_MAX_LENGTH, one_line, subject_line
from escalation.models import EscalationPolicy, EscalationStep, Notification
from incidents import lifecycle
from tests.conftest import require_service
from tests.escalation.processes import SmtpSink, have_aiosmtpd
from tests.factories import TeamFactory, classified

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
NASTY = "Disk full on db-1\r\nBcc: victim@example.org\n\tsecond line\x1b\x85\u2028end"


def unfold(header: str) -> str:
    """RFC 5322 unfolding: a line break followed by white space is the generator's folding, not content."""
    return re.sub(r"\r?\n(?=[ \t])", "", header)


@pytest.fixture(params=["locmem", "smtp"])
def wire(request, settings):
    """Where delivered mail ends up: (unfolded subject, envelope recipients) as the receiving side sees them."""
    if request.param == "locmem":
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

        def received() -> list[tuple[str, list[str]]]:
            parsed = [
                (email.message_from_bytes(m.message().as_bytes(), policy=policy.default), m.recipients())
                for m in mail.outbox
            ]
            return [(unfold(str(p["Subject"])), to) for p, to in parsed]

        yield received
        return
    require_service("aiosmtpd", have_aiosmtpd(), "pip install -e '.[dev]'")
    sink = SmtpSink()
    sink.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield lambda: [(unfold(m["subject"]), m["to"]) for m in sink.messages]
    finally:
        sink.stop()


def escalation_mail_about(title: str) -> list[int]:
    team = TeamFactory()
    policy_ = EscalationPolicy.objects.create(slug=f"p-{team.slug}", name="P", team=team)
    EscalationStep.objects.create(
        policy=policy_,
        position=1,
        trigger="unacknowledged",
        delay_minutes=1,
        notify_email="oncall@example.org",
    )
    with time_machine.travel(T0, tick=False):
        classified(team=team, title=title)
    sweep(now=T0 + dt.timedelta(minutes=1))
    return list(Notification.objects.filter(state="pending").values_list("pk", flat=True))


def test_an_escalation_mail_about_a_multi_line_title_is_delivered(wire):
    (pk,) = escalation_mail_about(NASTY)

    assert tasks.deliver_notification(pk) == "sent"

    [(subject, recipients)] = wire()
    assert "\r" not in subject
    assert "\n" not in subject
    assert "Disk full on db-1 Bcc: victim@example.org second line end" in subject
    assert recipients == ["oncall@example.org"]  # no header was injected
    assert Notification.objects.get(pk=pk).state == "sent"


def test_a_reporter_mail_about_a_multi_line_monitoring_summary_is_delivered(wire):
    team = TeamFactory()
    incident, actor = classified(team=team, title="CPU high\nhost=db-1\nvalue=97%")
    incident = lifecycle.acknowledge_incident(incident, actor=actor)
    incident = lifecycle.resolve_incident(incident, actor=actor, summary="Killed the runaway job.")
    row = Notification.objects.get(incident=incident, event="reporter_resolved")

    assert tasks.deliver_notification(row.pk) == "sent"

    subjects = [subject for subject, _ in wire()]
    assert subjects == [f"[{incident.reference}] Resolved: CPU high host=db-1 value=97%"]


def test_a_row_stored_with_a_broken_subject_before_the_fix_is_still_delivered(wire):
    """Rows already in the outbox are normalised when they are sent, not only when they are written."""
    incident, _ = classified(team=TeamFactory())
    row = Notification.objects.create(
        key="k" * 64, incident=incident, event="escalated", channel="email", recipient="a@example.org",
        subject="line one\r\nline two", body="body",
    )  # fmt: skip

    assert tasks.deliver_notification(row.pk) == "sent"

    assert [subject for subject, _ in wire()] == ["line one line two"]


def test_a_long_subject_is_capped_when_queued():
    (pk,) = escalation_mail_about("x" * 90 + " " + "y" * 100)
    subject = Notification.objects.get(pk=pk).subject
    assert len(subject) <= SUBJECT_MAX_LENGTH
    assert subject.endswith("…")


def test_one_line_collapses_controls_and_is_stable():
    assert one_line(" a\r\n\tb\x00c\x1b[31m \u2028 d\u202e ") == "a b c [31m d"
    assert one_line(one_line(NASTY)) == one_line(NASTY)
    assert len(subject_line("word " * 100)) <= SUBJECT_MAX_LENGTH
    assert subject_line("short") == "short"
