"""``python manage.py import_incidents PATH [--mapping FILE] [--dry-run]``: history from another tool.

PATH is JSON Lines (one incident a line with its events) or, with ``--mapping``, a CSV event log.
``--mapping desk-export`` reads IncidentDesk's own CSV export. See docs/import-export.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from incidents.importer import BATCH_SIZE, Importer, load_mapping, records_from

BUILT_IN_MAPPINGS = Path(__file__).resolve().parents[2] / "import_mappings"


class Command(BaseCommand):
    help = "Import incidents with their history from JSON Lines or a CSV event log (with a column mapping)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A .jsonl file, or a .csv file with --mapping.")
        parser.add_argument(
            "--mapping",
            help="A YAML/JSON column mapping for a CSV file, or `desk-export` for the desk's own.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check everything, write nothing.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        mapping = None
        if options["mapping"]:
            mapping_path = Path(options["mapping"])
            if not mapping_path.is_file():
                mapping_path = BUILT_IN_MAPPINGS / f"{options['mapping']}.yaml"
            try:
                mapping = load_mapping(mapping_path)
            except ValueError as error:
                raise CommandError(f"Mapping: {error}") from error
        elif path.suffix.lower() == ".csv":
            raise CommandError(
                "A CSV file needs --mapping (which column is the case id, timestamp, state ...)."
            )
        importer = Importer(dry_run=options["dry_run"], batch_size=max(1, options["batch_size"]))
        bar = {"disable": options["no_progress"], "file": self.stderr._out}
        try:
            with (
                path.open(encoding="utf-8-sig", newline="") as source,
                tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="reading", **bar) as progress,
            ):
                records = records_from(mapping, _counted(source, progress))
                if mapping is not None:
                    # A CSV log is grouped by case while it is read; checking and writing is a second phase.
                    records = tqdm(list(records), unit=" incidents", desc="importing", **bar)
                for record in records:
                    importer.add(record)
            importer.flush()
        except ValueError as error:
            raise CommandError(str(error)) from error
        self._report(importer, dry_run=options["dry_run"])

    def _report(self, importer: Importer, *, dry_run: bool) -> None:
        result = importer.result
        for error in sorted(result.errors, key=lambda e: e.line):
            self.stderr.write(f"skipped {error}")
        verb = "Would import" if dry_run else "Imported"
        self.stdout.write(
            f"{verb} {result.imported} incidents ({result.events} timeline entries); "
            f"{result.existing} already imported; {len(result.errors)} skipped."
        )
        if result.errors:
            raise CommandError(
                f"{len(result.errors)} incidents were skipped (lines above); the rest was imported."
            )


def _counted(lines: Any, progress: tqdm) -> Any:
    for line in lines:
        progress.update(len(line.encode("utf-8")))
        yield line
