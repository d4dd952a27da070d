"""``python manage.py import_incidents PATH [--mapping FILE] [--dry-run] [--limit N]``: history from another tool.

PATH is JSON Lines (one incident a line with its events) or, with ``--mapping``, a CSV export; either may be
gzip- or zip-compressed. ``--mapping desk-export`` reads IncidentDesk's own CSV export; the recipes of
docs/import-mappings/ read other tools' exports. See docs/import-export.md.
"""

from __future__ import annotations

import getpass
import itertools
import json
import zipfile
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from incidents.importer import BATCH_SIZE, Importer, Mapping, load_mapping, open_source, records_from

BUILT_IN_MAPPINGS = Path(__file__).resolve().parents[2] / "import_mappings"
RECIPES = Path(__file__).resolve().parents[3] / "docs" / "import-mappings"
WARNINGS_SHOWN = 50


def find_mapping(name: str) -> Path:
    """A mapping file by path, or by the name of a built-in mapping or a recipe (`servicenow-incident-audit`)."""
    path = Path(name)
    if path.is_file():
        return path
    for folder in (BUILT_IN_MAPPINGS, RECIPES):
        for suffix in (".yaml", ".yml", ".json"):
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    raise CommandError(f"Mapping: no file {name!r}, and no built-in mapping or recipe of that name.")


class Command(BaseCommand):
    help = "Import incidents with their history from JSON Lines or a CSV export (with a column mapping)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A .jsonl file, or a .csv file with --mapping; .gz and .zip too.")
        parser.add_argument(
            "--mapping",
            help="A YAML/JSON mapping for a CSV file, or the name of one: desk-export, servicenow-incident-audit, "
            "jira-service-management, zendesk-tickets, event-log.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check everything, write nothing.")
        parser.add_argument("--limit", type=int, help="Only the first N incidents of the file (a trial).")
        parser.add_argument("--user", help="The desk user running the import (shown on its summary page).")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit: at least 1.")
        mapping: Mapping | None = None
        mapping_path: Path | None = None
        if options["mapping"]:
            mapping_path = find_mapping(options["mapping"])
            try:
                mapping = load_mapping(mapping_path)
            except ValueError as error:
                raise CommandError(f"Mapping {mapping_path.name}: {error}") from error
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"--user: no user {options['user']!r}.")
        run = {
            "started_by": user,
            "run_by": (options["user"] or _os_user())[:150],
            "source": path.name[:500],
            "mapping_name": str(mapping_path.name if mapping_path else "")[:500],
            "mapping": json.loads(json.dumps(mapping.raw, default=str)) if mapping else None,
        }
        importer = Importer(
            dry_run=options["dry_run"], batch_size=max(1, options["batch_size"]), mapping=mapping, run=run
        )
        bar = {"disable": options["no_progress"], "file": self.stderr._out}
        try:
            with open_source(path, encoding=mapping.encoding if mapping else "utf-8-sig") as (source, name):
                if mapping is None and Path(name).suffix.lower() == ".csv":
                    raise CommandError(
                        "A CSV file needs --mapping (which column is the case id, timestamp, state ...)."
                    )
                compressed = name != path.name
                total = None if compressed else path.stat().st_size
                with tqdm(total=total, unit="B", unit_scale=True, desc="reading", **bar) as progress:
                    records: Any = records_from(mapping, _counted(source, progress))
                    if mapping is not None:
                        # A CSV is grouped by case while it is read; checking and writing is a second phase.
                        records = list(itertools.islice(records, options["limit"]))
                        records = tqdm(records, unit=" incidents", desc="importing", **bar)
                    elif options["limit"]:
                        records = itertools.islice(records, options["limit"])
                    for record in records:
                        importer.add(record)
            importer.finish()
        except (ValueError, UnicodeDecodeError, OSError, zipfile.BadZipFile) as error:
            raise CommandError(str(error)) from error
        self._report(importer, dry_run=options["dry_run"], limit=options["limit"])

    def _report(self, importer: Importer, *, dry_run: bool, limit: int | None) -> None:
        result = importer.result
        for error in sorted(result.errors, key=lambda e: e.line):
            self.stderr.write(f"skipped {error}")
        for warning in result.warnings[:WARNINGS_SHOWN]:
            self.stderr.write(f"warning {warning}")
        if len(result.warnings) > WARNINGS_SHOWN:
            more = len(result.warnings) - WARNINGS_SHOWN
            self.stderr.write(
                f"... and {more} more warnings" + ("" if dry_run else " (on the import's page)")
            )
        verb = "Would import" if dry_run else "Imported"
        created = importer.teams_created
        self.stdout.write(
            f"{verb} {result.imported} incidents ({result.events} timeline entries); "
            f"{result.existing} already imported; {result.skipped} skipped; {len(result.warnings)} warnings."
        )
        if created:
            self.stdout.write(f"Teams {'to be created' if dry_run else 'created'}: {', '.join(created)}.")
        if limit:
            self.stdout.write(f"Limited to the first {limit} incidents of the file (--limit).")
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        elif importer.run is not None:
            self.stdout.write(
                f"Import {importer.run.pk}: its summary is on /desk/imports/{importer.run.pk}/."
            )
        if result.skipped:
            rest = "nothing was written" if dry_run else "the rest was imported"
            raise CommandError(f"{result.skipped} incidents were skipped (lines above); {rest}.")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _counted(lines: Any, progress: tqdm) -> Any:
    for line in lines:
        progress.update(len(line.encode("utf-8")))
        yield line
