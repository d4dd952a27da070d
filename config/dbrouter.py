"""Reads of the reports and the CSV export from a replica (``REPORTS_DATABASE_URL``), everything else from
the primary.

A router cannot tell a report's read from any other read of the same model, so the report code says so:
``with reports_reads():`` around the figures and around the export's rows. Inside it, reads go to
``settings.REPORTS_DATABASE_ALIAS`` when one is configured; writes always go to the primary, so a write
made by mistake inside the block fails loudly on a primary rather than on a read-only replica. Sign-in,
sessions and permission checks stay on the primary (they happen before the block), so a lagging replica
never delays a login or shows a stale permission.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings

_reading_reports: ContextVar[bool] = ContextVar("reading_reports", default=False)


@contextmanager
def reports_reads() -> Iterator[str]:
    """Route the ORM's reads to the reports database for the duration; yields the alias that serves them.

    Nested blocks are harmless. Outside any block, or with no reports database, reads use ``default``.
    """
    token = _reading_reports.set(True)
    try:
        yield reports_alias()
    finally:
        _reading_reports.reset(token)


def reports_alias() -> str:
    """The alias the reports read from right now: the replica inside ``reports_reads()``, else default."""
    alias = getattr(settings, "REPORTS_DATABASE_ALIAS", None)
    return alias if alias and _reading_reports.get() else "default"


class ReportsRouter:
    """Django database router: see the module docstring."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        alias = getattr(settings, "REPORTS_DATABASE_ALIAS", None)
        if alias and _reading_reports.get():
            return alias
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The replica holds the same rows as the primary: an object read there may point at one from here.
        return True
