"""`python manage.py ingest_email < message.eml`: one RFC 822 message on standard input, for an MTA pipe
(as Request Tracker's mail gateway). Exit status follows sysexits, so the MTA bounces a refused message
(65, EX_DATAERR) and retries later on a temporary failure (75, EX_TEMPFAIL)."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from intake.inbound import ingest
from intake.mail import MessageRefused

EX_DATAERR = 65
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Read one e-mail message from standard input and open or update an incident from it."

    def handle(self, *args: Any, **options: Any) -> None:
        # Read one byte past the limit: enough to know the message is too large without holding all of it.
        raw = sys.stdin.buffer.read(settings.INTAKE_EMAIL_MAX_BYTES + 1)
        try:
            record = ingest(raw, source="pipe")
        except MessageRefused as exc:
            raise CommandError(str(exc), returncode=EX_DATAERR) from exc
        except DatabaseError as exc:
            raise CommandError(f"Temporary failure, try again later: {exc}", returncode=EX_TEMPFAIL) from exc
        reference = record.incident.reference if record.incident else "-"
        self.stdout.write(f"{record.outcome} {reference}")
