"""``python manage.py interview_config export [FILE]`` and ``... apply FILE [--dry-run]``.

The configuration file holds the interview rubrics and the case library as YAML: each case as the
document of its latest version. Applying is idempotent (the same file twice changes nothing) and a
case whose latest version was used by a session gets a new version instead of being edited.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from interviews.deskconfig import apply_interviews, export_interviews


class Command(BaseCommand):
    help = "Export or apply the interview configuration (rubrics and cases) as one YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        export = sub.add_parser("export")
        export.add_argument("file", nargs="?", default="-")
        apply = sub.add_parser("apply")
        apply.add_argument("file")
        apply.add_argument("--dry-run", action="store_true", help="Show what would change; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verb"] == "export":
            self._export(options["file"])
        else:
            self._apply(options["file"], dry_run=options["dry_run"])

    def _export(self, path: str) -> None:
        text = yaml.safe_dump(export_interviews(), sort_keys=False, allow_unicode=True, width=110)
        if path == "-":
            self.stdout.write(text)
        else:
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)

    def _apply(self, path: str, *, dry_run: bool) -> None:
        try:
            with open(path, encoding="utf-8") if path != "-" else sys.stdin as source:
                data = yaml.safe_load(source) or {}
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from error
        try:
            changes = apply_interviews(data, dry_run=dry_run)
        except ValueError as error:
            raise CommandError(f"Invalid configuration: {error}") from error
        verb = "Would change" if dry_run else "Changed"
        self.stdout.write(f"{verb}: {', '.join(changes)}" if changes else "Nothing to change.")
