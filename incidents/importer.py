"""Bring in incident history from another tool (SPEC section 9): JSON Lines or a CSV export with a mapping.

Each incident is checked whole in Python first (known states, timestamps, domains, categories, teams), and
every problem of it is reported (line, field, value and what was expected); then the incidents that passed
are written with their timelines in batches, two multi-row INSERTs of plain rows per batch on PostgreSQL
(``bulk_create`` elsewhere) — no query per row. A batch is one
transaction of whole incidents; if the database refuses one (a concurrent import of the same external_id),
the batch is written again an incident at a time, so nothing is ever half-imported.

Imported incidents are history: they keep their own timestamps, their channel is ``import``, every
timeline entry carries ``"imported": true``, and no SLA clock, timer or notification starts for them.
Re-importing skips every ``external_id`` that already exists, and writes nothing at all.

The replay records only what the history shows (docs/import-export.md): a row in the same state is an
update, never a transition; a milestone is set only by the move into it, or by the line stating it; a
history that starts after reception leaves the earlier milestones unknown (``history_started_late``), and
the report leaves such incidents out of its durations and rates (docs/reporting.md).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.utils.text import slugify

from . import lifecycle, timeline, transitions
from .export import unescape_cell
from .markup import render_markdown
from .models import Category, Domain, ImportRun, Incident, SlaStatus, Team, TimelineEntry

State = Incident.State
STATES = frozenset(State.values)  # read once: the enum's `values` is rebuilt on every access
BATCH_SIZE = 500
MILESTONE_FIELDS = (
    "received_at", "classified_at", "responded_at", "acknowledged_at", "escalated_at", "held_at",
    "resolved_at", "closed_at", "cancelled_at",
)  # fmt: skip
EXTERNAL_ID_MAX = 120  # Incident.external_id
NAME_MAX = 200  # Incident.reporter_name, assignee_name
MESSAGES_KEPT = 1000  # errors and warnings an ImportRun keeps


# --- errors and warnings -------------------------------------------------------------------------------


class RowError(Exception):
    """One problem of one incident of the file: its line, the field, the value and what was expected."""

    def __init__(self, line: int, message: str, *, field: str = "", value: Any = None) -> None:
        self.line = line
        self.field = field
        self.value = value
        self.message = message
        super().__init__(f"line {line}: {field + ': ' if field else ''}{message}")


class RecordErrors(Exception):
    """Every problem of one incident; it is skipped whole."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass
class Notice:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _expected(value: Any, what: str) -> str:
    return f"{value!r}: expected {what}"


# --- the mapping ---------------------------------------------------------------------------------------


@dataclass
class FieldSpec:
    """How one column becomes one field: value map, number prefix, null tokens, date formats and zone."""

    column: str
    values: dict[str, Any] = field(default_factory=dict)
    pattern: re.Pattern[str] | None = None
    null_values: frozenset[str] = frozenset()
    formats: list[str] = field(default_factory=list)
    time_zone: str = ""
    default: str | None = None  # when the incident never states it; "{external_id}" is replaced
    optional: bool = False  # the column may be missing from the file (an export of an older version)

    def lookup(self, text: str) -> tuple[bool, Any]:
        """(found, value) in the value map: exactly, else ignoring case."""
        if text in self.values:
            return True, self.values[text]
        folded = self.folded.get(text.casefold(), _MISSING)
        if folded is _MISSING and "*" in self.values:  # the map's value for anything it does not name
            return True, self.values["*"]
        return (folded is not _MISSING), folded

    @functools.cached_property
    def folded(self) -> dict[str, Any]:
        return {k.casefold(): v for k, v in self.values.items()}


_MISSING = object()


@dataclass
class Mapping:
    """How a CSV export's columns map to an incident (the mapping file, YAML or JSON; MAPPING_SCHEMA)."""

    case_id: list[str]
    timestamp: str = ""
    state: str = ""
    sequence: str = ""
    state_timestamps: dict[str, str] = field(default_factory=dict)
    state_values: dict[str, str | None] = field(default_factory=dict)
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    timestamp_formats: list[str] = field(default_factory=list)
    time_zone: str = "UTC"
    null_values: frozenset[str] = frozenset()
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    unescape_formulas: bool = False
    empty_is_null: bool = False  # empty_cells: null; an empty cell states null (the desk's own export)
    team_map: dict[str, str] = field(default_factory=dict)
    missing_teams: str = "error"
    people_match: tuple[str, ...] = ("username", "email")
    raw: dict[str, Any] = field(default_factory=dict)


_FORMATS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
_NULLS = {"type": "array", "items": {"type": "string"}}
_SCALAR = {"type": ["string", "integer", "boolean", "null"]}
FIELD_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["column"],
    "properties": {
        "column": {"type": "string", "minLength": 1},
        "values": {"type": "object", "additionalProperties": _SCALAR},
        "pattern": {"type": "string", "minLength": 1},
        "null_values": _NULLS,
        "format": _FORMATS,
        "time_zone": {"type": "string"},
        "default": {"type": "string"},
        "optional": {"type": "boolean"},
    },
}


def mapping_schema() -> dict[str, Any]:
    """The JSON Schema of a mapping file (docs/import-export.md describes each key)."""
    states = list(State.values)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["case_id"],
        "properties": {
            "case_id": {
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                ]
            },
            "timestamp": {"type": "string", "minLength": 1},
            "state": {"type": "string", "minLength": 1},
            "sequence": {"type": "string", "minLength": 1},
            "state_timestamps": {
                "type": "object",
                "propertyNames": {"enum": states},
                "additionalProperties": {"type": "string", "minLength": 1},
            },
            "state_values": {"type": "object", "additionalProperties": {"enum": [*states, None]}},
            "timestamp_format": _FORMATS,
            "time_zone": {"type": "string"},
            "null_values": _NULLS,
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
            "encoding": {"type": "string"},
            "unescape_formulas": {"type": "boolean"},
            "empty_cells": {"enum": ["skip", "null"]},
            "fields": {
                "type": "object",
                "propertyNames": {"enum": list(FIELDS)},
                "additionalProperties": {"oneOf": [{"type": "string", "minLength": 1}, FIELD_SPEC_SCHEMA]},
            },
            "teams": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "map": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    "missing": {"enum": ["error", "create", "unassigned"]},
                },
            },
            "people": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "match": {"type": "array", "items": {"enum": ["username", "email"]}, "uniqueItems": True}
                },
            },
        },
        "anyOf": [{"required": ["state_timestamps"]}, {"required": ["timestamp", "state"]}],
    }


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(the mapping)"


def _schema_message(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator == "anyOf" and not path:
        return "(the mapping): timestamp and state (a row per change), or state_timestamps, are required"
    if error.context:  # oneOf: the alternative that came closest is the deepest complaint
        closest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        return _schema_message(closest)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        return f"{_path([*path, extra[0]])}: unknown key; use {', '.join(known)}"
    if "propertyNames" in error.schema_path:
        return f"{_path([*path, error.instance])}: {error.message}"
    return f"{_path(path)}: {error.message}"


def _plain_keys(value: Any) -> Any:
    """YAML reads `true: met` with a boolean key and `1: x` with a number: a value map's keys are text."""
    if isinstance(value, dict):
        return {_key_text(k): _plain_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file against MAPPING_SCHEMA; a ValueError names every path that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"Cannot read the mapping {path}: {error}") from error
    return parse_mapping(data)


def parse_mapping(data: Any) -> Mapping:
    data = _plain_keys(data)
    if not isinstance(data, dict):
        raise ValueError("(the mapping): a YAML or JSON object")
    validator = jsonschema.Draft202012Validator(mapping_schema())
    problems = sorted({_schema_message(e) for e in validator.iter_errors(data)})
    if problems:
        raise ValueError("; ".join(problems))
    problems = []

    def zone(value: str, where: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{where}: unknown time zone {value!r}")
        return value

    def formats(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else list(value or [])

    specs: dict[str, FieldSpec] = {}
    for name, raw in (data.get("fields") or {}).items():
        spec = FieldSpec(column=raw) if isinstance(raw, str) else FieldSpec(column=raw["column"])
        if isinstance(raw, dict):
            spec.values = dict(raw.get("values") or {})
            spec.null_values = frozenset(raw.get("null_values") or [])
            spec.formats = formats(raw.get("format"))
            spec.default = raw.get("default")
            spec.optional = bool(raw.get("optional", False))
            spec.time_zone = (
                zone(raw["time_zone"], f"fields.{name}.time_zone") if raw.get("time_zone") else ""
            )
            if raw.get("pattern"):
                try:
                    spec.pattern = re.compile(raw["pattern"])
                except re.error as error:
                    problems.append(f"fields.{name}.pattern: not a regular expression ({error})")
            if (spec.formats or spec.time_zone) and name not in TIME_FIELDS:
                problems.append(f"fields.{name}: format and time_zone are for times only")
        specs[name] = spec
    case_id = data["case_id"]
    teams = data.get("teams") or {}
    mapping = Mapping(
        case_id=[case_id] if isinstance(case_id, str) else list(case_id),
        timestamp=data.get("timestamp", ""),
        state=data.get("state", ""),
        sequence=data.get("sequence", ""),
        state_timestamps=dict(data.get("state_timestamps") or {}),
        state_values=dict(data.get("state_values") or {}),
        fields=specs,
        timestamp_formats=formats(data.get("timestamp_format")),
        time_zone=zone(data.get("time_zone", "UTC"), "time_zone"),
        null_values=frozenset(data.get("null_values") or []),
        delimiter=data.get("delimiter", ","),
        encoding=data.get("encoding", "utf-8-sig"),
        unescape_formulas=bool(data.get("unescape_formulas", False)),
        empty_is_null=data.get("empty_cells", "skip") == "null",
        team_map={k: v or "" for k, v in (teams.get("map") or {}).items()},
        missing_teams=teams.get("missing", "error"),
        people_match=tuple((data.get("people") or {}).get("match", ["username", "email"])),
        raw=data,
    )
    if problems:
        raise ValueError("; ".join(problems))
    return mapping


# --- reading -------------------------------------------------------------------------------------------


@dataclass
class Event:
    line: int
    at: datetime
    state: str | None
    changes: dict[str, Any]
    order: tuple[Any, ...] = ()  # after `at`: the file's own sequence, else its order


@dataclass
class Record:
    """One incident as read from the file, before it is checked."""

    line: int
    external_id: str
    fields: dict[str, Any]
    events: list[Event]
    errors: list[RowError] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    row_changes: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)


@contextmanager
def open_source(path: Path, *, encoding: str = "utf-8-sig") -> Iterator[tuple[IO[str], str]]:
    """The file as text, unpacked when it is gzip or zip; also the name of what is read (for its suffix)."""
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        with gzip.open(path, "rt", encoding=encoding, newline="") as text:
            yield text, path.name.removesuffix(".gz")
        return
    if magic == b"PK\x03\x04":
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            data = [
                m for m in members if Path(m.filename).suffix.lower() in (".csv", ".jsonl", ".json", ".txt")
            ]
            chosen = members if len(members) == 1 else data
            if len(chosen) != 1:
                names = ", ".join(m.filename for m in members) or "nothing"
                raise ValueError(f"{path.name}: the zip must hold one export file; it holds {names}")
            with archive.open(chosen[0]) as member:
                yield io.TextIOWrapper(member, encoding=encoding, newline=""), chosen[0].filename
        return
    with path.open(encoding=encoding, newline="") as text:
        yield text, path.name


# The directives of the usual export formats, as the standard library's strptime reads them (its TimeRE),
# compiled once per format: strptime itself checks the locale and its cache on every call, which made it
# the costliest step of an event log's row. Any other directive goes to strptime.
_DIRECTIVES = {
    "Y": r"(?P<Y>\d\d\d\d)",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "d": r"(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
    "f": r"(?P<f>[0-9]{1,6})",
}


@functools.lru_cache(maxsize=64)
def _compiled_format(fmt: str) -> re.Pattern[str] | None:
    """A pattern equivalent to strptime's for `fmt`, or None when it uses a directive not listed (or one
    twice)."""
    parts, seen, i = [], set(), 0
    while i < len(fmt):
        char = fmt[i]
        if char == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _DIRECTIVES or directive in seen:
                return None
            seen.add(directive)
            parts.append(_DIRECTIVES[directive])
            i += 2
        elif char.isspace():
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            parts.append(r"\s+")
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts), re.IGNORECASE)


def _strptime(text: str, fmt: str) -> datetime:
    """datetime.strptime(text, fmt), through a pattern compiled once when the format allows it."""
    pattern = _compiled_format(fmt)
    if pattern is None:
        return datetime.strptime(text, fmt)
    match = pattern.fullmatch(text)
    if match is None:
        raise ValueError(f"time data {text!r} does not match format {fmt!r}")
    found = match.groupdict()
    fraction = found.get("f") or ""
    return datetime(
        int(found.get("Y") or 1900),
        int(found.get("m") or 1),
        int(found.get("d") or 1),
        int(found.get("H") or 0),
        int(found.get("M") or 0),
        int(found.get("S") or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
    )


def parse_time(value: Any, *, formats: Iterable[str] = (), zone: str = "UTC") -> datetime:
    """ISO 8601, or each of `formats` in turn; a time without an offset is in `zone`."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        for fmt in formats:
            try:
                parsed = _strptime(text, fmt)
                break
            except ValueError:
                continue
        if parsed is None:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                shapes = " or ".join([*(repr(f) for f in formats), "ISO 8601"])
                raise ValueError(_expected(text, f"a time as {shapes}")) from None
    if parsed is None:
        raise ValueError("missing timestamp")
    if parsed.tzinfo is not None:
        aware = parsed
    elif zone == "UTC":
        aware = parsed.replace(tzinfo=UTC)  # the same instant as ZoneInfo("UTC"), without its lookups
    else:
        aware = parsed.replace(tzinfo=ZoneInfo(zone))
    try:
        return aware.astimezone(UTC)  # as stored; a time at the edge of the calendar cannot be
    except OverflowError as error:
        raise ValueError(f"{value!s}: out of range") from error


def read_jsonl(lines: Iterable[str]) -> Iterator[Record]:
    """One incident a line: its fields, an `external_id` and `events` [{at, state, <changed fields>}]."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            yield Record(number, "", {}, [], [RowError(number, f"not JSON: {error.msg}")])
            continue
        except RecursionError:
            yield Record(number, "", {}, [], [RowError(number, "not JSON: nested too deeply")])
            continue
        if not isinstance(doc, dict):
            yield Record(number, "", {}, [], [RowError(number, "not a JSON object")])
            continue
        yield _record_from_document(number, doc)


def _record_from_document(number: int, doc: dict[str, Any]) -> Record:
    record = Record(number, str(doc.get("external_id") or "").strip(), {}, [])
    if len(record.external_id) > EXTERNAL_ID_MAX:
        record.errors.append(RowError(number, f"at most {EXTERNAL_ID_MAX} characters", field="external_id"))
    raw_events = doc.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        record.errors.append(RowError(number, "at least one event {at, state} is required", field="events"))
        raw_events = []
    for i, raw in enumerate(raw_events):
        where = f"events[{i}]"
        if not isinstance(raw, dict):
            record.errors.append(RowError(number, "not an object", field=where))
            continue
        try:
            at = parse_time(raw.get("at"))
        except (TypeError, ValueError) as error:
            record.errors.append(RowError(number, str(error), field=f"{where}.at", value=raw.get("at")))
            continue
        state = raw.get("state")
        if state is not None and not isinstance(state, str):
            record.errors.append(
                RowError(number, f"a state name, not {type(state).__name__}", field=f"{where}.state")
            )
            continue
        sequence = raw.get("seq")
        if sequence is not None and (not isinstance(sequence, int | float) or isinstance(sequence, bool)):
            record.errors.append(RowError(number, _expected(sequence, "a number"), field=f"{where}.seq"))
            continue
        changes = {k: v for k, v in raw.items() if k not in ("at", "state", "seq")}
        order = (0 if sequence is None else sequence, i)
        record.events.append(Event(number, at, state or None, changes, order))
    # The incident's values: the last change of each field in its events, unless the line states it
    # (an explicit null included: what the line says wins over anything derived).
    for event in sorted(record.events, key=lambda e: (e.at, e.order)):
        record.fields.update(event.changes)
    record.fields.update({k: v for k, v in doc.items() if k not in ("external_id", "events")})
    return record


def read_csv(lines: Iterable[str], mapping: Mapping) -> Iterator[Record]:
    """A CSV export: rows grouped by case id (in any order), one event per row and per state column.

    The whole file is grouped before the first incident is checked, since the rows of one case may be
    anywhere in it (event logs are usually sorted by time).
    """
    reader = csv.DictReader(lines, delimiter=mapping.delimiter)
    columns = [
        *mapping.case_id,
        mapping.timestamp,
        mapping.state,
        mapping.sequence,
        *mapping.state_timestamps.values(),
        *(spec.column for spec in mapping.fields.values() if not spec.optional),
    ]
    missing = [c for c in columns if c and c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"The CSV has no column {missing[0]!r} (named in the mapping).")
    records: dict[str, Record] = {}
    for row in reader:
        number = reader.line_num
        if mapping.unescape_formulas:
            row = {k: unescape_cell(v) if isinstance(v, str) else v for k, v in row.items()}
        case = next((row[c].strip() for c in mapping.case_id if _stated(row.get(c), mapping)), "")
        if not case:
            error = RowError(number, "empty", field=mapping.case_id[0])
            records[f"\0{number}"] = Record(number, "", {}, [], [error])
            continue
        record = records.setdefault(case, Record(number, case, {}, []))
        if len(case) > EXTERNAL_ID_MAX and not record.errors:
            record.errors.append(
                RowError(number, f"at most {EXTERNAL_ID_MAX} characters", field=mapping.case_id[0])
            )
        _add_row(record, row, number, mapping)
    defaults = {name: spec.default for name, spec in mapping.fields.items() if spec.default is not None}
    for record in records.values():
        # The incident's values: each field's last stated value in the history's order (not the file's).
        for _, changes in sorted(record.row_changes, key=lambda item: item[0]):
            record.fields.update(changes)
        for name, default in defaults.items():
            if name not in record.fields:
                record.fields[name] = default.replace("{external_id}", record.external_id)
        yield record


def _stated(cell: Any, mapping: Mapping, spec: FieldSpec | None = None) -> bool:
    text = (cell or "").strip() if isinstance(cell, str) else cell
    if text in (None, ""):
        return False
    return text not in mapping.null_values and (spec is None or text not in spec.null_values)


def cell_value(name: str, spec: FieldSpec, cell: str, mapping: Mapping) -> Any:
    """One cell as the value of field `name`: the value map, else the pattern's capture, else the text."""
    text = cell.strip()
    found, value = spec.lookup(text)
    if found:
        return value
    if spec.pattern is not None:
        match = spec.pattern.search(text)
        if match is None:
            raise ValueError(_expected(text, f"a value matching {spec.pattern.pattern!r}" + _keys(spec)))
        text = match.group(1) if match.re.groups else match.group(0)
        found, value = spec.lookup(text)
        if found:
            return value
    if name in TIME_FIELDS:
        return parse_time(
            text, formats=spec.formats or mapping.timestamp_formats, zone=spec.time_zone or mapping.time_zone
        )
    if spec.values and name not in REFERENCE_FIELDS and name not in _FREE_TEXT:
        try:
            FIELDS[name](text)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"{error}{_keys(spec)}") from None
    return text


def _keys(spec: FieldSpec) -> str:
    if not spec.values:
        return ""
    shown = ", ".join(repr(k) for k in list(spec.values)[:8])
    return f" (the mapping's values: {shown}{', ...' if len(spec.values) > 8 else ''})"


def _add_row(record: Record, row: dict[str, Any], number: int, mapping: Mapping) -> None:
    changes: dict[str, Any] = {}
    for name, spec in mapping.fields.items():
        cell = row.get(spec.column)
        if not _stated(cell, mapping, spec):
            if mapping.empty_is_null and isinstance(cell, str) and not cell.strip():
                changes[name] = None
            continue
        try:
            value = cell_value(name, spec, str(cell), mapping)
        except (TypeError, ValueError, OverflowError) as error:
            record.errors.append(RowError(number, str(error), field=spec.column, value=cell))
            continue
        if value is not None:  # a value the map sends to null states nothing
            changes[name] = value
    stamp: dict[str, Any] = {"formats": mapping.timestamp_formats, "zone": mapping.time_zone}
    sequence: Any = 0
    if mapping.sequence and _stated(row.get(mapping.sequence), mapping):
        try:
            sequence = float(row[mapping.sequence])
        except ValueError:
            record.errors.append(
                RowError(number, _expected(row[mapping.sequence], "a number"), field=mapping.sequence)
            )
    when = datetime.min.replace(tzinfo=UTC)
    row_time: datetime | ValueError | None = None  # parsed once: strptime is the costliest step of a row
    if mapping.timestamp and _stated(row.get(mapping.timestamp), mapping):
        try:
            row_time = when = parse_time(row[mapping.timestamp], **stamp)
        except ValueError as error:  # reported with the row's event below
            row_time = error
    record.row_changes.append(((when, sequence, number), changes))
    events: list[Event] = []
    for index, (column_state, column) in enumerate(mapping.state_timestamps.items()):
        if _stated(row.get(column), mapping):
            try:
                at = parse_time(row[column], **stamp)
            except ValueError as error:
                record.errors.append(RowError(number, str(error), field=column, value=row[column]))
                continue
            events.append(Event(number, at, column_state, {}, (sequence, number, index)))
    if not mapping.state:
        record.events.extend(events)
        return
    raw_state = (row.get(mapping.state) or "").strip()
    state: str | None
    if not _stated(raw_state, mapping):
        state = None  # unknown: the row is an update of whatever state the incident is in
    elif raw_state in mapping.state_values:
        state = mapping.state_values[raw_state]
    elif raw_state in STATES:
        state = raw_state
    else:
        shown = [*mapping.state_values, *State.values] if mapping.state_values else list(State.values)
        record.errors.append(
            RowError(number, f"unknown state {raw_state!r}: expected one of {', '.join(shown)}",
                     field=mapping.state, value=raw_state)
        )  # fmt: skip
        record.events.extend(events)
        return
    if not _stated(row.get(mapping.timestamp), mapping):
        record.errors.append(RowError(number, "missing timestamp", field=mapping.timestamp))
        record.events.extend(events)
        return
    if isinstance(row_time, ValueError) or row_time is None:
        record.errors.append(
            RowError(number, str(row_time), field=mapping.timestamp, value=row[mapping.timestamp])
        )
        record.events.extend(events)
        return
    at = row_time
    latest = max(events, key=lambda e: (e.at, e.order)) if events else None  # ties: the columns' order
    # One row per incident (a desk or ticket export): the current state at its time closes the history,
    # unless the state columns already end in it.
    if not mapping.state_timestamps or latest is None or latest.state != state:
        own = changes if not mapping.state_timestamps else {}
        events.append(Event(number, at, state, own, (sequence, number, len(mapping.state_timestamps))))
    record.events.extend(events)


# --- checking ------------------------------------------------------------------------------------------


@dataclass
class Lookups:
    """The small tables an incident refers to, loaded once per run: no query per row."""

    domains: dict[str, Domain]
    categories: dict[tuple[int, str], int]
    teams: dict[str, int]
    users: dict[str, int]
    emails: dict[str, int]

    @classmethod
    def load(cls) -> Lookups:
        users = list(get_user_model().objects.values_list("username", "email", "pk"))
        emails: dict[str, int] = {}
        for _, email, pk in users:
            if email:
                emails.setdefault(email.casefold(), pk)
        return cls(
            domains={d.slug: d for d in Domain.objects.all()},
            categories={(c.domain_id, c.path): c.pk for c in Category.objects.only("id", "domain", "path")},
            teams=dict(Team.objects.values_list("slug", "pk")),
            users={username: pk for username, _, pk in users},
            emails=emails,
        )


def _text(limit: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = "" if value is None else str(value)
        if len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text

    return parse


def _choice(choices: list[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = "" if value is None else str(value).strip()
        if text and text not in choices:
            raise ValueError(_expected(text, f"one of {', '.join(choices)}"))
        return text

    return parse


def _number(low: int, high: int) -> Callable[[Any], int | None]:
    def parse(value: Any) -> int | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            raise ValueError(_expected(value, f"a number from {low} to {high}"))
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(_expected(value, f"a number from {low} to {high}")) from None
        if number != value and str(number) != str(value).strip():
            raise ValueError(_expected(value, f"a whole number from {low} to {high}"))
        if not low <= number <= high:
            raise ValueError(f"{value!r}: must be from {low} to {high}")
        return number

    return parse


def _count(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(_expected(value, "a whole number of 0 or more")) from None
    if not 0 <= number <= 32767:
        raise ValueError(_expected(value, "a whole number from 0 to 32767"))
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "n", "f"):
        return False
    if text in ("1", "true", "yes", "y", "t"):
        return True
    raise ValueError(_expected(value, "true or false"))


def _time(value: Any) -> datetime | None:
    return None if value in (None, "") else parse_time(value)


# The fields an imported incident may carry, each with its parser (a ValueError names the problem).
# domain, category, team, assignee and reporter are names resolved through Lookups.
FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": _text(200),
    "description": _text(100_000),
    "outcome": _choice(Incident.Outcome.values),
    "harm_level": _choice(Incident.HarmLevel.values),
    "impact": _number(1, 3),
    "urgency": _number(1, 3),
    "priority": _number(1, 5),
    "reporter_email": _text(254),
    "confidential": _bool,
    "resolution_summary": _text(100_000),
    "cause": _text(100_000),
    "measures": _text(100_000),
    "resolution_code": _choice(Incident.ResolutionCode.values),
    "cancel_reason": _choice(Incident.CancelReason.values),
    "hold_reason": _choice(Incident.HoldReason.values),
    "sla_response": _choice(SlaStatus.values),
    "sla_resolution": _choice(SlaStatus.values),
    "response_due_at": _time,
    "resolution_due_at": _time,
    "escalation_level": _count,
    "reopen_count": _count,
    **dict.fromkeys(MILESTONE_FIELDS, _time),
    "created_at": _time,
    "updated_at": _time,
    "history_started_late": _bool,
    "domain": str,
    "category": str,
    "team": str,
    "assignee": str,
    "reporter": str,
}
REFERENCE_FIELDS = ("domain", "category", "team", "assignee", "reporter")
TIME_FIELDS = {name for name, parse in FIELDS.items() if parse is _time}
_FREE_TEXT = {"title", "description", "resolution_summary", "cause", "measures", "reporter_email"}


@dataclass
class Built:
    """An incident and its timeline, checked and ready to be written."""

    line: int
    incident: dict[str, Any]  # the row: a value per column, by attribute name
    entries: list[timeline.ImportedEntry]
    warnings: list[Notice]
    pk: int | None = None  # once written


class People:
    """Who the other tool's people are here: an account matched by username or e-mail, else their name."""

    def __init__(self, lookups: Lookups, match: tuple[str, ...]) -> None:
        self.lookups = lookups
        self.match = match

    def find(self, name: str) -> int | None:
        for how in self.match:
            found = (
                self.lookups.users.get(name)
                if how == "username"
                else self.lookups.emails.get(name.casefold())
            )
            if found is not None:
                return found
        return None


@dataclass
class Creation:
    """A team to create for an incident that passed every check."""

    slug: str
    name: str
    line: int


class Teams:
    """The other tool's group names to teams: the mapping's team map, then the slug; missing ones are an
    error, created (slugified, once per run) or left unassigned, as the mapping says."""

    def __init__(self, lookups: Lookups, mapping: Mapping | None, *, dry_run: bool) -> None:
        self.lookups = lookups
        self.map = mapping.team_map if mapping else {}
        self.missing = mapping.missing_teams if mapping else "error"
        self.dry_run = dry_run
        self.created: dict[str, str] = {}  # slug -> the source's name

    def find(self, name: str, line: int) -> tuple[int | None, Notice | Creation | None]:
        """The team's id (None: unassigned) and a warning, or the team to create; ValueError when the team
        must exist."""
        slug = self.map.get(name, name)
        if slug == "" and name in self.map:
            return None, None  # mapped to no team on purpose
        if slug in self.lookups.teams:
            return self.lookups.teams[slug], None
        if self.missing == "unassigned":
            return None, Notice(line, f"team: no team {name!r}; left unassigned")
        if self.missing == "create":
            made = slugify(slug)[:60]
            if not made:
                raise ValueError(_expected(name, "a team name with letters or digits"))
            if made in self.lookups.teams:
                return self.lookups.teams[made], None
            return None, Creation(made, name, line)  # created once the incident is known to be imported
        raise ValueError(f"unknown team {name!r}" + (": map it under teams.map" if self.map else ""))

    def create(self, creation: Creation) -> tuple[int | None, Notice | None]:
        if creation.slug in self.lookups.teams:  # created for an earlier incident of this run
            return self.lookups.teams[creation.slug], None
        if self.dry_run:
            first = creation.slug not in self.created
            self.created.setdefault(creation.slug, creation.name)
            notice = Notice(creation.line, f"team: {creation.name!r} would be created as {creation.slug}")
            return None, notice if first else None
        team, _ = Team.objects.get_or_create(slug=creation.slug, defaults={"name": creation.name[:120]})
        self.lookups.teams[creation.slug] = team.pk
        self.created[creation.slug] = creation.name
        return team.pk, Notice(creation.line, f"team: {creation.name!r} created as {creation.slug}")


def build(record: Record, lookups: Lookups, teams: Teams, people: People) -> Built:
    """Check one record whole and build its rows; RecordErrors lists every problem (nothing is written)."""
    errors = list(record.errors)
    if errors and not record.external_id:
        raise RecordErrors(errors)  # not even an incident (a line that is not JSON, a row without its id)
    warnings = list(record.warnings)
    if not record.external_id and not errors:
        errors.append(RowError(record.line, "missing", field="external_id"))
    values = _parse_fields(record, lookups, teams, people, errors, warnings)
    steps = _steps(record, errors)
    if errors:
        raise RecordErrors(errors)
    if "team_create" in values:
        values["team_id"], notice = teams.create(values["team_create"])
        if notice is not None:
            warnings.append(notice)
    history = replay(steps)
    incident = _incident(record, values, steps, history, warnings)
    entries = _entries(
        record, history, started_late=incident["history_started_late"], people=values["source_people"]
    )
    return Built(record.line, incident, entries, warnings)


def _parse_fields(
    record: Record,
    lookups: Lookups,
    teams: Teams,
    people: People,
    errors: list[RowError],
    warnings: list[Notice],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    line = record.line
    for name in sorted(set(record.fields) - set(FIELDS)):
        errors.append(RowError(line, "not a field the importer knows", field=name))
    for name, raw in record.fields.items():
        if name in REFERENCE_FIELDS or name not in FIELDS:
            continue
        try:
            values[name] = FIELDS[name](raw)
        except (TypeError, ValueError, OverflowError) as error:
            errors.append(RowError(line, str(error), field=name, value=raw))
    if not (values.get("title") or "").strip() and "title" not in {e.field for e in errors}:
        errors.append(RowError(line, "missing", field="title"))
    values["title"] = (values.get("title") or "").strip()
    refs = {name: str(record.fields.get(name) or "").strip() for name in REFERENCE_FIELDS}
    domain = lookups.domains.get(refs["domain"]) if refs["domain"] else None
    if refs["domain"] and domain is None:
        known = ", ".join(sorted(lookups.domains))
        errors.append(
            RowError(line, f"unknown domain {refs['domain']!r}: expected one of {known}", field="domain")
        )
    values["domain_id"] = domain.pk if domain else None
    values["category_id"] = None
    if refs["category"]:
        if domain is None:
            if refs["domain"] == "":
                errors.append(RowError(line, "a category needs its domain", field="category"))
        else:
            values["category_id"] = lookups.categories.get((domain.pk, refs["category"].strip("/")))
            if values["category_id"] is None:
                errors.append(
                    RowError(
                        line, f"unknown category {refs['category']!r} in {domain.slug}", field="category"
                    )
                )
    values["team_id"] = None
    if refs["team"]:
        try:
            values["team_id"], warning = teams.find(refs["team"], line)
            if isinstance(warning, Creation):
                values["team_create"] = warning
            elif warning is not None:
                warnings.append(warning)
        except ValueError as error:
            errors.append(RowError(line, str(error), field="team", value=refs["team"]))
    # People of the other tool need not exist here: unmatched, they keep their name, which the console shows.
    for role in ("assignee", "reporter"):
        name = refs[role]
        values[f"{role}_id"] = people.find(name) if name else None
        values[f"{role}_name"] = name[:NAME_MAX] if name and values[f"{role}_id"] is None else ""
    values["source_people"] = {k: refs[k] for k in ("assignee", "reporter") if refs[k]}
    if not values.get("reporter_email") and "@" in refs["reporter"] and values["reporter_id"] is None:
        values["reporter_email"] = refs["reporter"][:254]
    return values


def _steps(record: Record, errors: list[RowError]) -> list[Event]:
    """The events oldest first; same-instant ties in the file's order (or its own sequence); a state
    the desk does not know is refused."""
    for event in record.events:
        if event.state is not None and event.state not in STATES:
            errors.append(RowError(event.line, f"unknown state {event.state!r}: expected one of "
                                   f"{', '.join(State.values)}", field="state", value=event.state))  # fmt: skip
    events = sorted(record.events, key=lambda e: (e.at, e.order))
    if not events and not errors:
        errors.append(RowError(record.line, "at least one event {at, state} is required", field="events"))
    return events


@dataclass
class Step:
    event: Event
    state: str
    previous: str
    action: str
    moved: bool


@dataclass
class Replayed:
    """What an imported history means: its state, the milestones it shows, its counters and its steps."""

    state: str
    milestones: dict[str, datetime | None]
    held_from: str
    escalation_level: int
    reopen_count: int
    started_late: bool
    steps: list[Step]


def replay(events: list[Event]) -> Replayed:
    """Derive state, milestones and counters from a history, oldest first, recording only what it shows.

    A row in the state the incident is already in (or with no state) is an update, never a move. A
    milestone is set by the move into its state: the first classification, the first response (a move to
    responding that is not a resume or a reopen), the last escalation, the last resolution (cleared by a
    reopen), the close or cancel; hold data only while on hold. A history whose first row is not
    `received` started before the export's window: its earlier milestones stay unknown (None), including
    that of the state it starts in. Pure: the caller writes the rows.
    """
    first = events[0]
    state = first.state or State.RECEIVED
    milestones: dict[str, datetime | None] = dict.fromkeys(MILESTONE_FIELDS)
    started_late = state != State.RECEIVED
    if not started_late:
        milestones["received_at"] = first.at
    held_from, level, reopens = "", 0, 0
    steps = [Step(first, state, "", "", moved=True)]
    for event in events[1:]:
        new = event.state or state
        if new == state:
            steps.append(Step(event, state, state, "", moved=False))
            continue
        action = transitions.action_between(state, new, history=True, held_from=held_from)
        at = event.at
        if new == State.CLASSIFIED and milestones["classified_at"] is None:
            milestones["classified_at"] = at
        is_response = action not in (lifecycle.Action.RESUME, lifecycle.Action.REOPEN)
        if new == State.RESPONDING and is_response and state != State.RESOLVED:
            milestones["acknowledged_at"] = at
            milestones["responded_at"] = milestones["responded_at"] or at
        if new == State.ESCALATED and action != lifecycle.Action.RESUME:
            level += 1
            milestones["escalated_at"] = at
        if new == State.ON_HOLD:
            held_from, milestones["held_at"] = state, at
        if new == State.RESOLVED:
            milestones["resolved_at"] = at
        if new == State.CLOSED:
            milestones["closed_at"] = at
        if new == State.CANCELLED:
            milestones["cancelled_at"] = at
        if state == State.RESOLVED and new not in Incident.FINAL_STATES:
            reopens += 1  # back to work after a resolution, whatever the other tool called it
            milestones["resolved_at"] = None
        if new != State.ON_HOLD:
            held_from, milestones["held_at"] = "", None
        steps.append(Step(event, new, state, action, moved=True))
        state = new
    return Replayed(state, milestones, held_from, level, reopens, started_late, steps)


def _incident(
    record: Record, values: dict[str, Any], steps: list[Event], history: Replayed, warnings: list[Notice]
) -> dict[str, Any]:
    milestones = dict(history.milestones)
    stated = set(record.fields)
    for name in MILESTONE_FIELDS:
        if name in stated and name in values:  # the line's own value wins, an explicit null included
            milestones[name] = values[name]
    started_late = history.started_late and milestones["received_at"] is None
    if values.get("history_started_late") is not None:  # the desk's own export says so
        started_late = values["history_started_late"] or started_late
    if started_late:
        warnings.append(
            Notice(record.line, f"history starts in {history.steps[0].state}: the milestones before "
                     "it are unknown; the report leaves this incident out of its durations and rates")
        )  # fmt: skip
    received_at = milestones["received_at"] or steps[0].at
    milestones["received_at"] = received_at
    impact, urgency = values.get("impact"), values.get("urgency")
    matrix = lifecycle.priority_for(impact, urgency) if impact and urgency else None
    # The source's own priority is kept, even where its matrix differs from ours; ours applies from the
    # first classification in the desk.
    priority = values.get("priority") if values.get("priority") is not None else matrix
    override = ""
    if priority is not None and matrix is not None and priority != matrix:
        override = f"Priority of the source tool (the desk's matrix gives {matrix})."
    description = values.get("description") or ""
    skip = {"priority", "escalation_level", "reopen_count", "created_at", "updated_at", "title",
            "history_started_late"}  # fmt: skip
    scalar = {k: v for k, v in values.items() if k in FIELDS and k not in MILESTONE_FIELDS and k not in skip}
    scalar = {k: ("" if v is None and k not in ("impact", "urgency", "response_due_at", "resolution_due_at")
                  else v) for k, v in scalar.items()}  # fmt: skip
    if scalar.get("confidential") == "":
        scalar["confidential"] = False
    times = [m for m in milestones.values() if m]
    return _incident_values(
        **scalar,
        title=values["title"],
        description_html=_rendered(description) if description else "",
        state=history.state,
        priority=priority,
        priority_override_reason=override,
        channel=Incident.Channel.IMPORT,
        domain_id=values["domain_id"],
        category_id=values["category_id"],
        team_id=values["team_id"],
        assignee_id=values["assignee_id"],
        reporter_id=values["reporter_id"],
        assignee_name=values["assignee_name"],
        reporter_name=values["reporter_name"],
        history_started_late=started_late,
        held_from=history.held_from if history.state == State.ON_HOLD else "",
        escalation_level=_stated_or(values, "escalation_level", history.escalation_level),
        reopen_count=_stated_or(values, "reopen_count", history.reopen_count),
        external_id=record.external_id,
        tracking_token=secrets.token_urlsafe(32),
        created_at=values.get("created_at") or received_at,
        updated_at=values.get("updated_at") or max(steps[-1].at, *times),
        version=len(history.steps),
        **milestones,
    )


def _incident_values(**given: Any) -> dict[str, Any]:
    """The incident's row: each column's value by attribute name, the field's default where not given —
    what `Incident(**given)` holds, without building a model instance (a large share of the CPU)."""
    fields = _incident_fields()
    unknown = given.keys() - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"Incident has no field {sorted(unknown)[0]!r}")
    return {f.attname: given[f.attname] if f.attname in given else f.get_default() for f in fields}


@functools.cache
def _incident_fields() -> list[Any]:
    return [f for f in Incident._meta.concrete_fields if not f.primary_key]


@functools.lru_cache(maxsize=512)
def _rendered(description: str) -> str:
    """render_markdown, once per text: exports repeat their boilerplate descriptions (templates, "see
    above", a monitoring message) and rendering is the costliest step of an incident. Pure, so caching
    changes nothing but the time."""
    return render_markdown(description)


def _stated_or(values: dict[str, Any], name: str, derived: int) -> int:
    return values[name] if values.get(name) is not None else derived


def _entries(
    record: Record, history: Replayed, *, started_late: bool, people: dict[str, str]
) -> list[timeline.ImportedEntry]:
    """One entry per row of the history: the first is `created`, a move is `state_changed` with the
    table's action, a row in the same state is an update (`fields_changed`, with `"update": true`)."""
    source: dict[str, Any] = {"external_id": record.external_id, **people}
    if started_late:
        source["started_late"] = True
    first = history.steps[0]
    entries = [timeline.imported_created(at=first.event.at, state=first.state, source=source)]
    current = _plain(first.event.changes)
    for step in history.steps[1:]:
        new = _plain(step.event.changes)
        changes = {k: [current.get(k), v] for k, v in new.items() if current.get(k) != v}
        current.update(new)
        if step.moved:
            entry = timeline.imported_state_changed(
                at=step.event.at, action=step.action, old=step.previous, new=step.state, changes=changes
            )
        else:
            entry = timeline.imported_update(at=step.event.at, state=step.state, changes=changes)
        entries.append(entry)
    return entries


def _plain(changes: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values for the timeline's data."""
    return {
        k: v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in changes.items()
    }


# --- writing -------------------------------------------------------------------------------------------


@dataclass
class Result:
    imported: int = 0
    events: int = 0
    existing: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    row_changes: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)


class Importer:
    """Checks and writes records in batches; `dry_run` checks everything and writes nothing.

    The ImportRun is created with the first incident written (a run that writes nothing leaves no row).
    """

    def __init__(
        self,
        *,
        dry_run: bool = False,
        batch_size: int = BATCH_SIZE,
        mapping: Mapping | None = None,
        run: dict[str, Any] | None = None,
    ) -> None:
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.lookups = Lookups.load()
        self.teams = Teams(self.lookups, mapping, dry_run=dry_run)
        self.people = People(self.lookups, mapping.people_match if mapping else ("username", "email"))
        self.result = Result()
        self.run_fields = run or {}
        self.run: ImportRun | None = None
        self._seen: dict[str, int] = {}
        self._batch: list[Record] = []

    @property
    def teams_created(self) -> list[str]:
        return sorted(self.teams.created)

    def add(self, record: Record) -> None:
        if record.external_id and not record.errors:
            first = self._seen.setdefault(record.external_id, record.line)
            if first != record.line:
                self._skip([RowError(record.line, f"{record.external_id!r} repeats line {first}",
                                     field="external_id")])  # fmt: skip
                return
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def _skip(self, errors: list[RowError]) -> None:
        self.result.skipped += 1
        self.result.errors.extend(errors)

    def flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        ids = [r.external_id for r in batch if r.external_id]
        existing = set(Incident.objects.filter(external_id__in=ids).values_list("external_id", flat=True))
        built: list[Built] = []
        for record in batch:
            if record.external_id in existing:
                self.result.existing += 1
                continue
            try:
                built.append(build(record, self.lookups, self.teams, self.people))
            except RecordErrors as error:
                self._skip(error.errors)
            except Exception as error:  # a value no check foresaw (out of range, odd types): that line only
                self._skip([RowError(record.line, f"{type(error).__name__}: {error}")])
        if self.dry_run or not built:
            self._count(built)
            return
        run = self._run()
        for item in built:
            item.incident["import_run_id"] = run.pk
        try:
            with transaction.atomic():
                _write(built)
            self._count(built)
        except DatabaseError:  # a unique key taken meanwhile, or a value the database refuses
            self._write_one_by_one(built)

    def _run(self) -> ImportRun:
        if self.run is None:
            self.run = ImportRun.objects.create(**self.run_fields)
        return self.run

    def _write_one_by_one(self, built: list[Built]) -> None:
        for item in built:
            try:
                with transaction.atomic():
                    _reset(item)
                    _write([item])
                self._count([item])
            except DatabaseError as error:
                if Incident.objects.filter(external_id=item.incident["external_id"]).exists():
                    self.result.existing += 1  # imported meanwhile by someone else
                else:
                    self._skip([RowError(item.line, f"refused by the database: {error}")])

    def _count(self, built: list[Built]) -> None:
        self.result.imported += len(built)
        self.result.events += sum(len(b.entries) for b in built)
        for item in built:
            self.result.warnings.extend(item.warnings)

    def finish(self) -> ImportRun | None:
        """Write what is left, then the run's counts and messages (nothing in a dry run)."""
        self.flush()
        if self.run is None:
            return None
        from django.utils import timezone

        result = self.result
        messages = [f"skipped {e}" for e in sorted(result.errors, key=lambda e: e.line)]
        messages += [f"warning {w}" for w in result.warnings]
        self.run.finished_at = timezone.now()
        self.run.imported, self.run.events = result.imported, result.events
        self.run.skipped, self.run.existing = result.skipped, result.existing
        self.run.warnings = len(result.warnings)
        self.run.teams_created = self.teams_created
        self.run.messages = messages[:MESSAGES_KEPT]
        self.run.save()
        return self.run


def _reset(item: Built) -> None:
    """Forget the id a rolled-back INSERT handed out, to insert the row again."""
    item.pk = None


# Python types psycopg2 sends as they are, as Django's fields would prepare them; any other value goes
# through its field's get_db_prep_save (a naive datetime too: Django makes it aware, with a warning).
_AS_IS = frozenset({str, int, bool, float, type(None)})


def _unnest_insert(table: str, columns: list[tuple[str, str]]) -> str:
    """INSERT ... SELECT FROM UNNEST: one array parameter per column (as Django's bulk_create does on
    PostgreSQL), which PostgreSQL plans once instead of once per row of a VALUES list."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name, _ in columns)
    arrays = ", ".join(f"(%s)::{db_type}[]" for _, db_type in columns)
    return f"INSERT INTO {quote(table)} ({names}) SELECT * FROM UNNEST({arrays})"  # noqa: S608 (model names)


def _db_type(field: Any) -> str:
    return str(field.db_type(connection)).split("(")[0]  # varchar[], not varchar(200)[]: nothing truncated


@functools.cache
def _incident_insert() -> str:
    columns = [(f.column or f.attname, _db_type(f)) for f in _incident_fields()]
    return _unnest_insert(Incident._meta.db_table, columns) + " RETURNING id"


@functools.cache
def _entry_insert() -> str:
    fields = {f.attname: f for f in TimelineEntry._meta.concrete_fields}
    columns = [(name, _db_type(fields[name])) for name in _ENTRY_COLUMNS]
    return _unnest_insert(TimelineEntry._meta.db_table, columns)


def _incident_row(incident: dict[str, Any]) -> list[Any]:
    row = []
    for f in _incident_fields():
        value = incident[f.attname]
        kind = type(value)
        if kind in _AS_IS or (kind is datetime and value.tzinfo is not None):
            row.append(value)
        else:
            row.append(f.get_db_prep_save(value, connection))
    return row


_ENTRY_COLUMNS = ("incident_id", "kind", "at", "action", "public", "data")


def _write(built: list[Built]) -> None:
    """Two INSERTs for the whole batch, of plain rows: the incidents (their ids come back, in the order
    of the rows, as bulk_create relies on too), then their timelines. No model instance per entry, and
    no ORM compilation per value: those took most of the importer's CPU. Called inside the batch's
    transaction."""
    if connection.vendor != "postgresql":  # SQLite's parameter limit: let bulk_create split the batch
        incidents = Incident.objects.bulk_create([Incident(**b.incident) for b in built])
        entries = []
        for item, incident in zip(built, incidents, strict=True):
            item.pk = incident.pk
            entries += [TimelineEntry(incident_id=incident.pk, **e._asdict()) for e in item.entries]
        TimelineEntry.objects.bulk_create(entries)
        return
    with connection.cursor() as cursor:
        # The batch commits without waiting for its WAL to reach the disk (a wait per batch that was a
        # large share of an import's time). Nothing is lost that the run claims: the run's counts are saved
        # at the end by a synchronous commit, which flushes the WAL up to it, these batches included; a crash
        # before that loses whole batches (never part of an incident), and the next run imports them again.
        # In the INSERT's round trip: psycopg2 sends both statements at once. Only when the batch is the
        # outermost transaction: SET LOCAL would also make a caller's enclosing transaction asynchronous.
        rows = [_incident_row(item.incident) for item in built]
        asynchronous = "" if connection.savepoint_ids else "SET LOCAL synchronous_commit TO OFF; "
        cursor.execute(
            asynchronous + _incident_insert(),
            [list(c) for c in zip(*rows, strict=True)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        lines: list[tuple[Any, ...]] = []
        for item, pk in zip(built, ids, strict=True):
            item.pk = pk
            lines += [(pk, e.kind, e.at, e.action, e.public, json.dumps(e.data)) for e in item.entries]
        if lines:
            cursor.execute(_entry_insert(), [list(c) for c in zip(*lines, strict=True)])


def records_from(mapping: Mapping | None, lines: Iterable[str]) -> Iterator[Record]:
    """JSON Lines unless a mapping says it is a CSV export."""
    return read_csv(lines, mapping) if mapping is not None else read_jsonl(lines)
