"""Histories built to break the replay, and the report's figures over them computed by hand.

H1 starts late in `resolved` (the export cut its beginning); H2 has same-state runs in every state; H3 holds,
resumes and then updates in the same state; H4 states `"resolved_at": null`; H5 and H6 have same-minute
ties (file order; the file's own `seq`); H5's source priority disagrees with our matrix; H7 is cancelled
twice. The CSV tests cover unknown states, `?` in dates and every error of a line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from incidents.models import ImportRun, Incident, TimelineEntry
from reporting import figures
from reporting.figures import ReportFilters
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
S = Incident.State


def t(hour: int, minute: int = 0) -> str:
    return datetime(2025, 5, 6, hour, minute, tzinfo=UTC).isoformat()


def ev(hour: int, minute: int, state: str, **changes) -> dict:
    return {"at": t(hour, minute), "state": state, **changes}


# fmt: off
HISTORIES = [
    {"external_id": "H1", "title": "Late start", "events": [ev(10, 0, "resolved"), ev(11, 0, "closed")]},
    {
        "external_id": "H2",
        "title": "Same-state runs",
        "sla_resolution": "met",
        "events": [
            ev(8, 0, "received"),
            ev(8, 1, "received"),
            ev(8, 5, "classified", impact=2, urgency=2),
            ev(8, 6, "classified"),
            ev(8, 10, "responding"),
            ev(8, 11, "responding"),
            ev(8, 20, "escalated"),
            ev(8, 30, "escalated"),
            ev(8, 40, "escalated"),
            ev(9, 0, "on_hold"),
            ev(9, 10, "on_hold"),
            ev(9, 30, "escalated"),
            ev(10, 0, "resolved"),
            ev(10, 5, "resolved"),
            ev(11, 0, "closed"),
            ev(11, 5, "closed"),
        ],
    },
    {
        "external_id": "H3",
        "title": "Hold, resume, update",
        "sla_resolution": "breached",
        "events": [
            ev(8, 0, "received"),
            ev(8, 2, "classified", impact=1, urgency=1),
            ev(8, 30, "responding"),
            ev(9, 0, "on_hold"),
            ev(9, 30, "responding"),
            ev(10, 0, "responding", hold_reason=""),
            ev(12, 0, "resolved"),
        ],
    },
    {
        "external_id": "H4",
        "title": "Explicit null",
        "resolved_at": None,
        "events": [
            ev(8, 0, "received"),
            ev(8, 10, "classified", impact=3, urgency=3),
            ev(8, 20, "responding"),
            ev(9, 0, "resolved"),
        ],
    },
    {
        "external_id": "H5",
        "title": "Ties in file order, the source's priority",
        "priority": 4,
        "sla_resolution": "met",
        "events": [
            ev(8, 0, "received"),
            ev(8, 0, "classified", impact=2, urgency=1),
            ev(8, 0, "responding"),
            ev(8, 30, "resolved"),
        ],
    },
    {
        "external_id": "H6",
        "title": "Ties ordered by the file's seq",
        "sla_resolution": "breached",
        "events": [
            {**ev(8, 0, "responding"), "seq": 2},
            {**ev(8, 0, "received"), "seq": 0},
            {**ev(8, 0, "classified", impact=1, urgency=2), "seq": 1},
            ev(9, 0, "resolved"),
        ],
    },
    {
        "external_id": "H7",
        "title": "Cancelled twice",
        "events": [ev(8, 0, "received"), ev(8, 30, "cancelled"), ev(8, 40, "cancelled")],
    },
]
# fmt: on


def run(path, *args):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_incidents", str(path), "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


@pytest.fixture
def imported(tmp_path):
    path = tmp_path / "histories.jsonl"
    path.write_text("\n".join(json.dumps(h) for h in HISTORIES) + "\n")
    out, err, error = run(path)
    assert error is None, err
    return out, err


def report(**filters):
    admin = UserFactory(username="auditor", is_superuser=True, is_staff=True)
    start, end = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    return figures.summary(admin, ReportFilters(start=start, end=end, **filters))


def get(external_id: str) -> Incident:
    return Incident.objects.get(external_id=external_id)


def moves(incident: Incident) -> list[tuple[str, str]]:
    return list(incident.timeline.order_by("at", "id").values_list("kind", "action"))


def test_a_history_that_starts_late_in_resolved_leaves_its_milestones_unknown(imported):
    h1 = get("H1")
    assert (h1.state, h1.history_started_late) == (S.CLOSED, True)
    assert h1.resolved_at is None  # not the first row's time: that would be a 0-hour resolution
    assert h1.closed_at.isoformat() == t(11)
    assert h1.received_at.isoformat() == t(10)  # the first row, for the cohort only
    assert h1.timeline.earliest("at").data["started_late"] is True
    assert "line 1: history starts in resolved" in imported[1]


def test_same_state_rows_are_updates_never_transitions_milestones_or_escalations(imported):
    h2 = get("H2")
    assert (h2.state, h2.escalation_level, h2.reopen_count) == (S.CLOSED, 1, 0)
    assert h2.classified_at.isoformat() == t(8, 5)
    assert h2.responded_at.isoformat() == t(8, 10)
    assert h2.escalated_at.isoformat() == t(8, 20)  # neither 08:30 nor 08:40, nor the resume at 09:30
    assert h2.resolved_at.isoformat() == t(10)
    assert h2.closed_at.isoformat() == t(11)
    actions = [action for kind, action in moves(h2) if kind == "state_changed"]
    assert actions == ["classify", "acknowledge", "escalate", "hold", "resume", "resolve", "close"]
    updates = h2.timeline.filter(kind=TimelineEntry.Kind.FIELDS_CHANGED)
    assert updates.count() == 8
    assert sorted(u.data["state"] for u in updates) == sorted(
        ["received", "classified", "responding", "escalated", "escalated", "on_hold", "resolved", "closed"]
    )
    assert all(u.data["update"] is True for u in updates)
    h7 = get("H7")
    assert (h7.state, h7.cancelled_at.isoformat()) == (S.CANCELLED, t(8, 30))


def test_a_same_state_update_after_a_resume_is_not_the_first_response(imported):
    h3 = get("H3")
    assert h3.responded_at.isoformat() == t(8, 30)
    assert [a for k, a in moves(h3)] == ["", "classify", "acknowledge", "hold", "resume", "", "resolve"]


def test_an_explicit_null_on_the_line_wins_over_the_replay(imported):
    h4 = get("H4")
    assert (h4.state, h4.resolved_at, h4.history_started_late) == (S.RESOLVED, None, False)


def test_same_instant_ties_keep_file_order_unless_the_file_gives_a_sequence(imported):
    assert [a for _, a in moves(get("H5"))] == ["", "classify", "acknowledge", "resolve"]
    h6 = get("H6")
    assert [a for _, a in moves(h6)] == ["", "classify", "acknowledge", "resolve"]
    assert h6.responded_at.isoformat() == t(8)


def test_the_source_priority_is_kept_where_our_matrix_differs(imported):
    h5 = get("H5")
    assert (h5.impact, h5.urgency, h5.priority) == (2, 1, 4)
    assert h5.priority_override_reason == "Priority of the source tool (the desk's matrix gives 2)."
    assert get("H6").priority == 2  # no source priority: the matrix (1, 2)


def test_on_hold_to_resolved_is_no_resume():
    from incidents.transitions import TRANSITIONS, action_between

    def between(old, new, held_from=""):
        return action_between(old, new, history=True, held_from=held_from)

    assert between(S.ON_HOLD, S.RESOLVED, held_from=S.RESPONDING) == ""
    assert between(S.ON_HOLD, S.RESPONDING, held_from=S.RESPONDING) == "resume"
    assert between(S.ON_HOLD, S.ESCALATED, held_from=S.RESPONDING) == ""
    assert between(S.ESCALATED, S.ESCALATED) == ""
    # every name comes from the lifecycle's one table
    assert set(TRANSITIONS) == {"classify", "acknowledge", "escalate", "hold", "resume", "resolve",
                                "reopen", "close", "cancel", "assign"}  # fmt: skip
    # assign keeps the state: a history step never reads as one
    assert between(S.RESPONDING, S.RESPONDING) == ""


def test_every_figure_equals_the_hand_computation(imported):
    data = report()

    assert data["counts"]["total"] == 7
    # MTTA: H5 0, H6 0, H2 600, H4 1200, H3 1800 -> median 600; p90 at 3.6: 1200 + 0.6 * 600
    assert data["mtta"] == {"count": 5, "median_seconds": 600.0, "p90_seconds": 1560.0}
    # MTTR: H5 1800, H6 3600, H2 7200, H3 14400 (H1 late, H4 unknown) -> median 3600 + 0.5 * 3600;
    # p90 at 2.7: 7200 + 0.7 * 7200
    assert data["mttr"] == {"count": 4, "median_seconds": 5400.0, "p90_seconds": 12240.0}
    assert data["excluded"] == {
        "history_started_late": 1,
        "resolution_unknown": 1,
        "figures": {"mtta": 0, "mttr": 2, "reopen": 2, "escalation": 1, "first_contact_resolution": 2},
    }
    assert data["sla"]["resolution"] == {"met": 2, "breached": 2, "compliance": 0.5}
    by_priority = {row["priority"]: row["resolution"]["compliance"] for row in data["sla"]["by_priority"]}
    assert by_priority == {1: 0.0, 2: 0.0, 3: 1.0, 4: 1.0, 5: None}
    assert data["rates"]["reopen"] == {"count": 0, "of": 4, "rate": 0.0}
    assert data["rates"]["escalation"] == {"count": 1, "of": 5, "rate": 0.2}  # H2 of H2-H6
    assert data["rates"]["first_contact_resolution"] == {"count": 3, "of": 4, "rate": 0.75}  # H3, H5, H6
    mttr_by_priority = {p: report(priorities=(p,))["mttr"]["median_seconds"] for p in (1, 2, 3, 4, 5)}
    assert mttr_by_priority == {1: 14400.0, 2: 3600.0, 3: 7200.0, 4: 1800.0, 5: None}


def test_unknown_states_question_marks_and_every_error_of_a_line(tmp_path):
    (tmp_path / "map.yaml").write_text(
        "case_id: id\ntimestamp: at\nstate: state\nnull_values: ['?']\n"
        "state_values: {Open: received, Work: responding, Done: resolved, '-100': null}\n"
        "fields:\n  title: title\n  resolved_at: {column: solved, format: '%d/%m/%Y %H:%M'}\n"
        "  impact: {column: impact, pattern: '^(\\d)', values: {High: 1}}\n"
    )
    (tmp_path / "log.csv").write_text(
        "id,at,state,title,solved,impact\n"
        "A,2025-05-06 08:00,Open,Good,?,2 - Medium\n"
        "A,2025-05-06 08:10,-100,,?,High\n"  # ServiceNow's unknown state: an update
        "A,2025-05-06 09:00,Done,,06/05/2025 09:00,\n"
        "B,2025-05-06 08:00,Open,Bad,?,9 - Huge\n"
        "B,?,Weird,,yesterday,\n"
    )

    out, err, error = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))

    a = get("A")
    assert (a.state, a.impact, a.resolved_at.isoformat()) == (S.RESOLVED, 1, t(9))
    assert [k for k, _ in moves(a)] == ["created", "fields_changed", "state_changed"]
    assert "Imported 1 incidents (3 timeline entries); 0 already imported; 1 skipped; 0 warnings." in out
    # every error of B, each with its line, field, value and what was expected
    assert "line 5: impact: '9': must be from 1 to 3 (the mapping's values: 'High')" in err
    assert "line 6: state: unknown state 'Weird': expected one of Open, Work, Done, -100, received" in err
    assert "line 6: solved: 'yesterday': expected a time as '%d/%m/%Y %H:%M' or ISO 8601" in err
    assert err.count("skipped line") == 3
    assert "1 incidents were skipped (lines above); the rest was imported" in str(error)


def test_dry_run_writes_nothing_and_says_so_and_limit_takes_the_first_n(tmp_path):
    path = tmp_path / "histories.jsonl"
    path.write_text("\n".join(json.dumps(h) for h in HISTORIES) + "\n")

    out, _, error = run(path, "--dry-run", "--limit", "3")

    assert error is None
    assert "Would import 3 incidents" in out
    assert "Limited to the first 3 incidents of the file (--limit)." in out
    assert "Dry run: nothing was written." in out
    assert not Incident.objects.exists()
    assert not ImportRun.objects.exists()

    out, _, _ = run(path, "--limit", "2", "--user", UserFactory(username="migrator").username)
    assert set(Incident.objects.values_list("external_id", flat=True)) == {"H1", "H2"}
    imported = ImportRun.objects.get()
    assert (imported.started_by.username, imported.imported, imported.warnings) == ("migrator", 2, 1)


def test_the_mapping_is_checked_against_its_json_schema_and_errors_name_the_path(tmp_path):
    (tmp_path / "log.csv").write_text("id,at,state\n")
    cases = {
        "case_id: id\ntimestamp: at\nstate: state\nfields: {impact: {column: impact, pattern: 5}}\n":
            "fields.impact.pattern: 5 is not of type 'string'",
        "case_id: id\ntimestamp: at\nstate: state\nteams: {missing: invent}\n":
            "teams.missing: 'invent' is not one of ['error', 'create', 'unassigned']",
        "case_id: id\ntimestamp: at\nstate: state\nfields: {impact: {colum: impact}}\n":
            "fields.impact.colum: unknown key",
        "case_id: id\ntimestamp: at\nstate: state\nstate_values: {Open: opened}\n": "state_values.Open:",
        "case_id: id\ntimestamp: at\nstate: state\nfields: {impact: {column: i, pattern: '(('}}\n":
            "fields.impact.pattern: not a regular expression",
        "case_id: id\ntimestamp: at\nstate: state\nfields: {title: {column: t, time_zone: UTC}}\n":
            "fields.title: format and time_zone are for times only",
    }  # fmt: skip
    for text, expected in cases.items():
        (tmp_path / "map.yaml").write_text(text)
        _, _, error = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))
        assert error is not None, text
        assert expected in str(error), (text, error)


def test_missing_teams_are_created_once_and_only_for_incidents_that_are_imported(tmp_path):
    from incidents.models import Team

    (tmp_path / "map.yaml").write_text(
        "case_id: id\ntimestamp: at\nstate: state\nfields: {title: title, team: group, impact: impact}\n"
        "teams: {missing: create, map: {Desk: ''}}\n"
    )
    (tmp_path / "log.csv").write_text(
        "id,at,state,title,group,impact\n"
        "A,2025-05-06 08:00,received,One,Group 24,\n"
        "B,2025-05-06 08:00,received,Two,Group 24,\n"
        "C,2025-05-06 08:00,received,Bad,Group 99,7\n"  # skipped: its team is not created
        "D,2025-05-06 08:00,received,Mapped to no team,Desk,\n"
    )

    out, err, _ = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"), "--dry-run")
    assert "Teams to be created: group-24." in out
    assert not Team.objects.filter(slug__startswith="group-").exists()

    out, err, _ = run(tmp_path / "log.csv", "--mapping", str(tmp_path / "map.yaml"))

    assert "Teams created: group-24." in out
    assert list(Team.objects.filter(slug__startswith="group-").values_list("slug", flat=True)) == ["group-24"]
    assert get("A").team == get("B").team
    assert get("D").team is None
    assert err.count("created as group-24") == 1
