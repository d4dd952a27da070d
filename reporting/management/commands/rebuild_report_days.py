"""Rebuild the per-day report figures (reporting.daily): the changed days, or with --all every day."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from reporting import daily


class Command(BaseCommand):
    help = (
        "Rebuild the per-day report figures of every day changed since the last rebuild (what beat runs "
        "every minute), or of every day with --all. Idempotent: a second run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="rebuild every day, not only changed ones")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The per-day report figures are kept on PostgreSQL only.")
        start = time.perf_counter()
        days = daily.rebuild_all() if options["all"] else daily.refresh()
        self.stdout.write(f"rebuilt {days} days in {time.perf_counter() - start:.1f} s")
