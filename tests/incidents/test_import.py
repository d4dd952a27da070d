from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation.models import SlaClock, Timer
from incidents import importer
from incidents.models import AppendOnlyError, Incident, TimelineEntry
from tests.factories import CategoryFactory, TeamFactory, UserFactory, domain

pytestmark = pytest.mark.django_db
S = Incident.State


def t(hour: int, minute: int = 0) -> str:
    return datetime(2025, 3, 4, hour, minute, tzinfo=UTC).isoformat()


def doc(external_id: str = "OLD-1", **extra) -> dict:
    base = {
        "external_id": external_id,
        "title": "Mail server down",
        "domain": "it_service",
        "events": [
            {"at": t(9), "state": "received"},
            {"at": t(9, 5), "state": "classified", "impact": 1, "urgency": 2},
            {"at": t(9, 20), "state": "responding"},
            {"at": t(11), "state": "resolved", "resolution_summary": "Restarted"},
            {"at": t(12), "state": "closed"},
        ],
    }
    return {**base, **extra}


def write_jsonl(tmp_path, docs, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(d) if isinstance(d, dict) else d for d in docs) + "\n")
    return path


def run(path, *args):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_incidents", str(path), "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def test_jsonl_incident_keeps_its_own_timestamps_and_history(tmp_path):
    team = TeamFactory(slug="mail")
    path = write_jsonl(
        tmp_path, [doc(team="mail", cause="Disk full", measures="Alerting", resolution_code="fixed")]
    )

    out, err, error = run(path)

    assert error is None, err
    assert "Imported 1 incidents (5 timeline entries)" in out
    incident = Incident.objects.get(external_id="OLD-1")
    assert incident.state == S.CLOSED
    assert incident.channel == Incident.Channel.IMPORT
    assert incident.team == team
    assert (incident.impact, incident.urgency, incident.priority) == (1, 2, 2)
    assert incident.received_at.isoformat() == t(9)
    assert incident.created_at.isoformat() == t(9)
    assert incident.classified_at.isoformat() == t(9, 5)
    assert incident.responded_at.isoformat() == t(9, 20)
    assert incident.resolved_at.isoformat() == t(11)
    assert incident.closed_at.isoformat() == t(12)
    assert incident.updated_at.isoformat() == t(12)
    entries = list(incident.timeline.order_by("at"))
    assert [(e.kind, e.action, e.data.get("to")) for e in entries] == [
        ("created", "", "received"),
        ("state_changed", "classify", "classified"),
        ("state_changed", "acknowledge", "responding"),
        ("state_changed", "resolve", "resolved"),
        ("state_changed", "close", "closed"),
    ]
    assert all(e.data["imported"] is True for e in entries)
    assert entries[1].data["changes"] == {"impact": [None, 1], "urgency": [None, 2]}
    assert [e.at.isoformat() for e in entries] == [t(9), t(9, 5), t(9, 20), t(11), t(12)]


def test_imported_incidents_start_no_sla_clock_and_their_timeline_stays_append_only(tmp_path):
    run(write_jsonl(tmp_path, [doc(events=[{"at": t(9), "state": "received"}])]))

    incident = Incident.objects.get(external_id="OLD-1")
    assert not SlaClock.objects.filter(incident=incident).exists()
    assert not Timer.objects.filter(incident=incident).exists()
    entry = incident.timeline.get()
    entry.data = {}
    with pytest.raises(AppendOnlyError):
        entry.save()


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    path = write_jsonl(tmp_path, [doc("A"), doc("B")])
    run(path)
    before = list(TimelineEntry.objects.order_by("id").values_list("id", flat=True))

    out, _, error = run(path)

    assert error is None
    assert "Imported 0 incidents (0 timeline entries); 2 already imported; 0 skipped; 0 warnings." in out
    assert Incident.objects.count() == 2
    assert list(TimelineEntry.objects.order_by("id").values_list("id", flat=True)) == before


def test_unknown_state_and_missing_timestamp_are_reported_by_line_and_skipped_whole(tmp_path):
    bad_state = doc("BAD-STATE")
    bad_state["events"][2]["state"] = "in_progress"
    no_time = doc("NO-TIME")
    del no_time["events"][3]["at"]
    path = write_jsonl(tmp_path, [doc("GOOD-1"), bad_state, "{not json", no_time, doc("GOOD-2")])

    out, err, error = run(path)

    assert error is not None
    assert "line 2: state: unknown state 'in_progress'" in err
    assert "line 3: not JSON" in err
    assert "line 4: events[3].at: missing timestamp" in err
    assert "Imported 2 incidents" in out
    assert set(Incident.objects.values_list("external_id", flat=True)) == {"GOOD-1", "GOOD-2"}
    # nothing of a skipped incident was written, not even its first entries
    assert TimelineEntry.objects.count() == 10


def test_unknown_references_and_bad_values_name_the_field(tmp_path):
    path = write_jsonl(
        tmp_path,
        [
            doc("1", domain="nope"),
            doc("2", team="ghosts"),
            doc("3", category="network/vpn"),
            doc("4", impact=7),
            doc("5", title=""),
            doc("6", colour="red"),
            {"title": "no id", "events": [{"at": t(9), "state": "received"}]},
            doc("1"),
        ],
    )

    _, err, error = run(path)

    assert error is not None
    assert "line 1: domain: unknown domain 'nope'" in err
    assert "line 2: team: unknown team 'ghosts'" in err
    assert "line 3: category: unknown category 'network/vpn' in it_service" in err
    assert "line 4: impact: 7: must be from 1 to 3" in err
    assert "line 5: title: missing" in err
    assert "line 6: colour: not a field the importer knows" in err
    assert "line 7: external_id: missing" in err
    assert "line 8: external_id: '1' repeats line 1" in err
    assert not Incident.objects.exists()


def test_dry_run_checks_everything_and_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path, [doc("A"), doc("B", domain="nope")])

    out, err, error = run(path, "--dry-run")

    assert "Would import 1 incidents (5 timeline entries)" in out
    assert "line 2: domain: unknown domain" in err
    assert error is not None
    assert not Incident.objects.exists()
    assert not TimelineEntry.objects.exists()


def test_history_from_another_tool_is_taken_as_it_was_with_reopen_hold_and_escalation(tmp_path):
    TeamFactory(slug="net")
    events = [
        {"at": t(8), "state": "received"},
        {"at": t(8, 10), "state": "classified"},
        {"at": t(8, 20), "state": "escalated"},
        {"at": t(8, 30), "state": "on_hold"},
        {"at": t(9), "state": "escalated"},
        {"at": t(10), "state": "resolved"},
        {"at": t(11), "state": "responding"},
        {"at": t(12), "state": "on_hold"},
    ]
    run(write_jsonl(tmp_path, [doc("H", team="net", events=events)]))

    incident = Incident.objects.get(external_id="H")
    assert incident.state == S.ON_HOLD
    assert incident.held_from == S.RESPONDING
    assert incident.held_at.isoformat() == t(12)
    assert incident.escalation_level == 1  # the resume from hold is not a second escalation
    assert incident.reopen_count == 1
    assert incident.resolved_at is None  # cleared by the reopen, as the lifecycle does
    assert incident.responded_at is None  # nobody acknowledged it: the reopen is no first response
    actions = list(incident.timeline.order_by("at").values_list("action", flat=True))
    assert actions == ["", "classify", "escalate", "hold", "resume", "resolve", "reopen", "hold"]


def test_events_out_of_order_are_sorted_and_unknown_people_are_kept_by_name(tmp_path):
    UserFactory(username="ann")
    events = [{"at": t(10), "state": "classified"}, {"at": t(9), "state": "received"}]
    run(write_jsonl(tmp_path, [doc("P", events=events, assignee="ann", reporter="bob@old.example")]))

    incident = Incident.objects.get(external_id="P")
    assert incident.state == S.CLASSIFIED
    assert incident.assignee.username == "ann"
    assert incident.reporter is None
    assert incident.reporter_email == "bob@old.example"
    assert incident.timeline.earliest("at").data["reporter"] == "bob@old.example"


def test_csv_event_log_with_a_mapping_file(tmp_path):
    TeamFactory(slug="desk")
    vpn = CategoryFactory(slug="vpn", domain=domain("it_service"))
    (tmp_path / "map.yaml").write_text(
        "case_id: Case\ntimestamp: When\nstate: Status\n"
        "time_zone: Europe/Amsterdam\ntimestamp_format: '%d-%m-%Y %H:%M'\n"
        "state_values: {New: received, Assigned: classified, Working: responding, Done: resolved}\n"
        "fields: {title: Subject, domain: Kind, category: Cat, team: Group}\n"
    )
    # rows of the two cases interleaved, as an event log sorted by time is
    (tmp_path / "log.csv").write_text(
        "Case,When,Status,Subject,Kind,Cat,Group\n"
        "C1,04-03-2025 10:00,New,Printer on fire,it_service,vpn,\n"
        "C2,04-03-2025 10:01,New,Disk full,it_service,,\n"
        "C1,04-03-2025 10:05,Assigned,,,,desk\n"
        "C2,04-03-2025 10:06,Exploded,,,,\n"
        "C1,04-03-2025 10:30,Working,,,,\n"
        "C1,04-03-2025 12:00,Done,,,,\n"
    )

    out, err, error = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))

    assert error is not None
    assert "line 5: Status: unknown state 'Exploded'" in err
    assert "Imported 1 incidents (4 timeline entries)" in out
    incident = Incident.objects.get(external_id="C1")
    assert incident.title == "Printer on fire"
    assert incident.category == vpn
    assert incident.team.slug == "desk"
    assert incident.state == S.RESOLVED
    assert incident.received_at.isoformat() == "2025-03-04T09:00:00+00:00"  # 10:00 in Amsterdam
    assert incident.resolved_at.isoformat() == "2025-03-04T11:00:00+00:00"
    assert incident.timeline.filter(action="classify").get().data["changes"] == {"team": [None, "desk"]}
    assert not Incident.objects.filter(external_id="C2").exists()


def test_a_mapping_that_is_wrong_names_its_key(tmp_path):
    (tmp_path / "log.csv").write_text("Case,When\nC1,2025-01-01\n")
    cases = {
        "timestamp: When\n": "case_id",
        "case_id: Case\n": "timestamp and state",
        "case_id: Case\ntimestamp: When\nstate: Status\n": "no column 'Status'",
        "case_id: Case\ntimestamp: When\nstate: When\nfields: {colour: When}\n": "fields.colour",
        "case_id: Case\ntimestamp: When\nstate: When\ntime_zone: Mars/Olympus\n": "time_zone",
        "case_id: Case\ntimstamp: When\n": "timstamp: unknown key",
    }
    for text, expected in cases.items():
        (tmp_path / "map.yaml").write_text(text)
        _, _, error = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))
        assert error is not None, text
        assert expected in str(error), (text, error)
    _, _, error = run(tmp_path / "log.csv")
    assert "needs --mapping" in str(error)


def test_import_costs_a_fixed_number_of_queries_per_batch(tmp_path):
    path = write_jsonl(tmp_path, [doc(f"Q{i}") for i in range(120)])

    with CaptureQueriesContext(connection) as queries:
        run(path, "--batch-size", "50")

    assert Incident.objects.count() == 120
    assert TimelineEntry.objects.count() == 600
    # lookups (4), the import run (created with the first batch, its counts saved at the end: 2), then per
    # batch: the existing ids, the transaction (2) and the INSERTs, which are one per model on PostgreSQL and
    # as many as the parameter limit needs on SQLite. Never a query per row.
    inserts = sum(_inserts(n) for n in (50, 50, 20))
    assert len(queries) == 4 + 2 + 3 * 3 + inserts, [q["sql"][:60] for q in queries]


def _inserts(incidents: int) -> int:
    total = 0
    for model, rows in ((Incident, incidents), (TimelineEntry, incidents * 5)):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        size = connection.ops.bulk_batch_size(fields, [None] * rows)
        total += math.ceil(rows / size)
    return total


def test_the_replay_matches_the_lifecycle_for_a_desk_made_incident():
    """What the lifecycle does step by step, the importer's replay derives from the states alone."""
    from incidents.importer import Event, replay
    from tests.factories import incident_in

    incident = incident_in(S.CLOSED)
    entries = incident.timeline.filter(kind__in=["created", "state_changed"]).order_by("at", "id")
    events = [Event(0, e.at, e.data["to"], {}, (i,)) for i, e in enumerate(entries)]

    history = replay(events)

    assert history.state == incident.state
    for name in ("received_at", "classified_at", "responded_at", "resolved_at", "closed_at"):
        assert history.milestones[name] == getattr(incident, name), name
    assert [s.action for s in history.steps] == ["", *entries.values_list("action", flat=True)[1:]]


def test_csv_time_fields_use_the_mapping_format_and_zone_and_a_late_start_leaves_its_milestones_unknown(
    tmp_path,
):
    (tmp_path / "map.yaml").write_text(
        "case_id: id\ntimestamp: at\nstate: state\ntime_zone: Europe/Berlin\ntimestamp_format: '%Y%m%d %H%M'\n"
        "fields: {title: title, response_due_at: due}\n"
    )
    (tmp_path / "log.csv").write_text(
        "id,at,state,title,due\nX1,20250601 1000,responding,Late start,20250601 1100\nX2,20250601 1000,received,Bad,soon\n"
    )

    _, err, _ = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))

    incident = Incident.objects.get(external_id="X1")
    assert incident.response_due_at.isoformat() == "2025-06-01T09:00:00+00:00"
    # the export's window cut the history: the response happened before it, when is unknown
    assert incident.responded_at is None
    assert incident.history_started_late is True
    assert incident.received_at.isoformat() == "2025-06-01T08:00:00+00:00"  # the first row's, for the cohort
    assert "line 3: due: " in err


def test_a_batch_the_database_refuses_is_written_again_one_incident_at_a_time():
    """Another import writes external_id B between our check and our INSERT: A and C still arrive whole."""
    from incidents.importer import Importer, read_jsonl
    from tests.factories import report

    importer = Importer(batch_size=10)
    for record in read_jsonl(json.dumps(doc(x)) for x in "ABC"):
        importer.add(record)
    raced = []

    def concurrent_import(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not raced and '"external_id" IN' in sql:
            raced.append(report(external_id="B"))
        return result

    with connection.execute_wrapper(concurrent_import):
        importer.flush()

    assert (importer.result.imported, importer.result.existing, importer.result.errors) == (2, 1, [])
    assert Incident.objects.get(external_id="A").timeline.count() == 5
    assert Incident.objects.get(external_id="C").timeline.count() == 5
    assert Incident.objects.get(external_id="B").channel == Incident.Channel.WEB  # the other writer's
    assert Incident.objects.get(external_id="B").timeline.count() == 1


def test_values_no_check_foresaw_are_reported_by_line_and_the_rest_is_imported(tmp_path):
    """Found in review: each of these once stopped the whole run with a traceback."""
    listed_state = doc("LISTED-STATE")
    listed_state["events"][1]["state"] = ["classified"]
    huge_priority = doc("HUGE", priority=1e400)
    far_past = doc("FAR-PAST")
    far_past["events"][0]["at"] = "0001-01-01T00:00:00+05:00"
    long_id = doc("X" * 300)
    path = write_jsonl(
        tmp_path,
        [doc("GOOD-1"), listed_state, huge_priority, far_past, long_id, doc("GOOD-2")],
    )

    out, err, error = run(path)

    assert error is not None
    assert "line 2: events[1].state" in err
    assert "line 3: priority" in err
    assert "line 4:" in err
    assert "line 5: external_id: at most 120 characters" in err
    assert "Imported 2 incidents" in out
    assert set(Incident.objects.values_list("external_id", flat=True)) == {"GOOD-1", "GOOD-2"}


def test_an_export_of_an_older_desk_without_the_history_started_late_column_still_imports(tmp_path):
    from incidents.export import csv_rows
    from incidents.selectors import desk_user
    from tests.factories import incident_in

    admin = UserFactory(username="exporter", is_superuser=True, is_staff=True)
    incident = incident_in(S.RESOLVED)
    lines = "".join(csv_rows([incident], desk_user(admin))).splitlines()
    older = "\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n"  # the last column is the new one
    assert not older.splitlines()[0].endswith("history_started_late")
    (tmp_path / "older.csv").write_text(older)
    Incident.objects.filter(pk=incident.pk).update(external_id="gone")  # import it as into another desk

    _, err, error = run(tmp_path / "older.csv", "--mapping", "desk-export")

    assert error is None, err
    back = Incident.objects.get(external_id=incident.reference)
    assert (back.state, back.resolved_at, back.responded_at) == (
        S.RESOLVED,
        incident.resolved_at,
        incident.responded_at,
    )
    assert back.history_started_late is False


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("03/12/2026 07:04:15", "%d/%m/%Y %H:%M:%S"),
        ("3/2/2026 7:04:05", "%d/%m/%Y %H:%M:%S"),
        ("03/12/2026   07:04:15", "%d/%m/%Y %H:%M:%S"),
        ("2026-12-03T07:04:15.5", "%Y-%m-%dT%H:%M:%S.%f"),
        ("20261203070415", "%Y%m%d%H%M%S"),
        ("30/02/2026 07:04:15", "%d/%m/%Y %H:%M:%S"),
        ("03/12/2026 07:04:60", "%d/%m/%Y %H:%M:%S"),
        ("03/12/2026 07:04:15 extra", "%d/%m/%Y %H:%M:%S"),
        ("03 Dec 2026", "%d %b %Y"),
        ("?", "%d/%m/%Y"),
    ],
)
def test_a_time_format_reads_exactly_as_strptime_reads_it(text: str, fmt: str) -> None:
    # parse_time reads the usual formats through patterns compiled once; what it accepts, and the
    # time it reads, must stay those of strptime (a refused text falls through to ISO 8601, then fails).
    try:
        expected: datetime | None = datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        expected = None
    try:
        got: datetime | None = importer.parse_time(text, formats=[fmt])
    except ValueError:
        got = None
    assert got == expected


def _synchronous_commit_set(path) -> bool:
    with CaptureQueriesContext(connection) as queries:
        run(path)
    return any("synchronous_commit" in q["sql"] for q in queries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_commits_asynchronously_only_as_the_outermost_transaction(tmp_path):
    """PostgreSQL: the batches skip the wait for the disk (the run's final save flushes them), but never
    make a caller's enclosing transaction asynchronous."""
    from django.db import transaction

    assert _synchronous_commit_set(write_jsonl(tmp_path, [doc("A1")], "a.jsonl"))
    with transaction.atomic():
        assert not _synchronous_commit_set(write_jsonl(tmp_path, [doc("A2")], "b.jsonl"))
    assert Incident.objects.filter(external_id__in=["A1", "A2"]).count() == 2
    with connection.cursor() as cursor:  # SET LOCAL ended with its batch
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
