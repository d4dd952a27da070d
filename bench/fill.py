"""The incident fill the benches share (api_latency, suite, queue_latency, similar_latency).

One ``INSERT ... SELECT generate_series`` of N incidents: three domains, every state, a spread of reporters,
teams and dates (one a minute back in time). Columns added to the model after FILL_SQL was written are not
in its column list: while it runs, every NOT NULL column without a database default that it does not name
gets an empty default (``filler_defaults``), so the fill keeps working as the model grows.

``fill_incidents(..., fast=True)`` (what the suite does, at every size) is the bulk-load recipe, which makes
a million rows a matter of a minute or two rather than many:

- ``session_replication_role = replica`` for the INSERT: PostgreSQL fires no triggers, neither the foreign
  key checks (one ``SELECT ... FOR KEY SHARE`` per row and key; every key the fill writes comes from a join
  or a parameter that exists) nor the per-day reporting trigger (reporting/migrations/0002: a transition
  table of every new row, then one ``INSERT ... SELECT DISTINCT`` of its quarter hours). The per-day report
  figures are rebuilt afterwards by ``reporting.daily.rebuild_all()``, what a new installation runs: the
  same rows the trigger and a refresh would have led to.
- the table's indexes that back no constraint (the full-text and trigram GIN indexes, the partial SLA
  indexes, ...) are dropped before and built after, from their own ``pg_get_indexdef``, with a large
  ``maintenance_work_mem``: one sort per index instead of a million index insertions.
- ``synchronous_commit = off``; then ``VACUUM (ANALYZE)``: statistics for the planner, and a visibility map so
  that index-only scans are index-only (otherwise autovacuum does it at a moment of its choosing, mid-run).

The table is not made UNLOGGED for the fill: the timeline, comments, ratings ... reference it, and a logged
table cannot reference an unlogged one; ``SET LOGGED`` would also write the whole table to the WAL again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FILL_SQL = """
INSERT INTO incidents_incident (
    title, description, description_html, state, domain_id, category_id, outcome, harm_level, impact, urgency,
    priority, priority_override_reason, channel, reporter_id, reporter_email, confidential, tracking_token,
    team_id, escalation_level, reopen_count, hold_reason, held_from, received_at, created_at, updated_at,
    version, resolution_summary, cause, measures, resolution_code, auto_closed, cancel_reason, responded_at,
    resolved_at, closed_at, sla_response, sla_resolution
)
SELECT
    (ARRAY['VPN drops', 'Printer jam', 'Phishing mail', 'Wrong dose', 'Mail delayed', 'Laptop stolen'])[1 + g %% 6]
        || ' #' || g,
    'Reported by the bench: ' || md5(g::text) || ' network printer server outage',
    '<p>bench</p>',
    (ARRAY['received','classified','responding','escalated','on_hold','resolved','closed','cancelled'])[1 + g %% 8],
    d.id, c.id, '', '', 1 + g %% 3, 1 + (g / 3) %% 3, 1 + g %% 5, '', 'api',
    CASE WHEN g %% 10 = 0 THEN %(reporter)s ELSE %(other)s END, '', g %% 17 = 0, md5(g::text || 'token'),
    %(team)s, 0, 0, '', '',
    now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, now(),
    1, '', '', '', '', false, '', NULL, NULL, NULL, '', ''
FROM generate_series(1, %(n)s) AS g
JOIN incidents_domain d ON d.slug = (ARRAY['it_service','it_service','security','medical'])[1 + g %% 4]
LEFT JOIN incidents_category c ON c.domain_id = d.id AND c.path = 'bench'
"""

TABLE = "incidents_incident"
EMPTY_BY_TYPE = {"character varying": "''", "text": "''", "integer": "0", "smallint": "0", "bigint": "0",
                 "boolean": "false", "jsonb": "'{}'", "double precision": "0", "numeric": "0",
                 "ARRAY": "'{}'"}  # fmt: skip


def fill_columns(sql: str = FILL_SQL) -> set[str]:
    """The columns an ``INSERT INTO incidents_incident (...) SELECT`` names."""
    return set(re.findall(r"\w+", sql.split("(", 1)[1].split(")", 1)[0]))


@contextmanager
def filler_defaults(cursor: Any, sql: str = FILL_SQL) -> Iterator[list[str]]:
    """Columns that `sql` does not name and the database would refuse empty get an empty default while it
    runs (dropped again after). Yields their names."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL",
        [TABLE],
    )
    named = fill_columns(sql)
    missing = [(name, kind) for name, kind in cursor.fetchall() if name not in named and name != "id"]
    unknown = [f"{name} ({kind})" for name, kind in missing if kind not in EMPTY_BY_TYPE]
    if unknown:
        raise SystemExit(
            f"bench/fill.py: no empty value known for {', '.join(unknown)}: add it to EMPTY_BY_TYPE"
        )
    for name, kind in missing:
        cursor.execute(f'ALTER TABLE {TABLE} ALTER COLUMN "{name}" SET DEFAULT {EMPTY_BY_TYPE[kind]}')
    try:
        yield [name for name, _ in missing]
    finally:
        for name, _ in missing:
            cursor.execute(f'ALTER TABLE {TABLE} ALTER COLUMN "{name}" DROP DEFAULT')


def empty_incidents(cursor: Any) -> None:
    """Every incident and what hangs on it gone (the timeline's append-only guard lifted for the TRUNCATE)."""
    cursor.execute("ALTER TABLE incidents_timelineentry DISABLE TRIGGER USER")
    cursor.execute(
        "TRUNCATE incidents_timelineentry, incidents_comment, incidents_attachment, incidents_incident CASCADE"
    )
    cursor.execute("ALTER TABLE incidents_timelineentry ENABLE TRIGGER USER")


def secondary_indexes(cursor: Any) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index of the table that backs no constraint."""
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [TABLE],
    )
    return list(cursor.fetchall())


def fill_incidents(
    cursor: Any,
    n: int,
    *,
    reporter: int,
    other: int,
    team: int,
    sql: str = FILL_SQL,
    fast: bool = True,
    params: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Insert `n` incidents with `sql` (FILL_SQL, or another script's INSERT ... SELECT with `params` for its
    own parameters) on the connection of `cursor` (autocommit, as Django's is outside atomic blocks). Returns
    seconds per step. With `fast` the caller must rebuild the per-day report figures
    (``reporting.daily.rebuild_all()``)."""
    params = {"n": n, "reporter": reporter, "other": other, "team": team, **(params or {})}
    times: dict[str, float] = {}
    started = time.perf_counter()
    if not fast:
        with filler_defaults(cursor, sql):
            cursor.execute(sql, params)
        times["insert"] = time.perf_counter() - started
        cursor.execute(f"ANALYZE {TABLE}")
        times["analyze"] = time.perf_counter() - started - times["insert"]
        return times
    indexes = secondary_indexes(cursor)
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET maintenance_work_mem = '512MB'")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    try:
        cursor.execute("SET session_replication_role = replica")
        try:
            with filler_defaults(cursor, sql):
                cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
        times["insert"] = time.perf_counter() - started
    finally:
        mark = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        times["indexes"] = time.perf_counter() - mark
    mark = time.perf_counter()
    cursor.execute(f"VACUUM (ANALYZE) {TABLE}")
    times["vacuum analyze"] = time.perf_counter() - mark
    cursor.execute("RESET maintenance_work_mem")
    cursor.execute("RESET synchronous_commit")
    return times
