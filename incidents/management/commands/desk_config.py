"""``python manage.py desk_config export [FILE]`` and ``desk_config apply FILE [--dry-run]``.

The whole configuration as one YAML file; see incidents.deskconfig and docs/configuration.md.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.deskconfig import apply_config, export_config

HEADER = "# IncidentDesk configuration: python manage.py desk_config apply FILE (see docs/configuration.md)\n"


class Command(BaseCommand):
    help = "Export the desk's configuration to one YAML file, or make the database match such a file."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        export = sub.add_parser("export", help="Write the configuration (to standard output without FILE).")
        export.add_argument("file", nargs="?", default="-")
        apply = sub.add_parser("apply", help="Make the database match FILE, all or nothing.")
        apply.add_argument("file")
        apply.add_argument("--dry-run", action="store_true", help="List what would change; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verb"] == "export":
            self._export(options["file"])
        else:
            self._apply(options["file"], dry_run=options["dry_run"])

    def _export(self, path: str) -> None:
        text = HEADER + yaml.safe_dump(export_config(), sort_keys=False, allow_unicode=True, width=110)
        if path == "-":
            self.stdout.write(text, ending="")
            return
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)

    def _apply(self, path: str, *, dry_run: bool) -> None:
        try:
            with open(path, encoding="utf-8") if path != "-" else sys.stdin as source:
                data = yaml.safe_load(source)
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from error
        try:
            changes = apply_config(data, dry_run=dry_run)
        except ValueError as error:
            raise CommandError(f"Nothing was applied; {path} is not valid:\n{error}") from error
        if not changes:
            self.stdout.write("Nothing to change.")
            return
        self.stdout.write(("Would change:" if dry_run else "Changed:") + "".join(f"\n  {c}" for c in changes))
