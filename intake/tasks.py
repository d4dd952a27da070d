"""Thin Celery tasks: they call the domain."""

from __future__ import annotations

from celery import shared_task

from . import imap


@shared_task(acks_late=True)
def poll_imap() -> dict[str, int]:
    """Read the IMAP mailbox (on beat when IMAP_HOST is set). Running it twice handles each message once."""
    result = imap.poll()
    return {"handled": result.handled, "refused": result.refused, "failed": result.failed}
