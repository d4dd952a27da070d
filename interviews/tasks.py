"""Celery tasks of interviews: thin prompts that call the domain."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def erase_expired_candidates() -> int:
    """Erase the personal data of candidates past their retention date (safe to run at any time, twice)."""
    from interviews.services import erase_expired_candidates as erase

    return erase()
