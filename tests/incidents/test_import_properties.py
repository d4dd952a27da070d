"""Properties of the importer over generated histories (hypothesis), on PostgreSQL.

For every generated history: the replayed milestones are a subset of the moves in the file (a milestone's
time is the time of a row that moved into its state), re-importing writes nothing, and the desk's CSV
export of the incident imports back (`--mapping desk-export`) to the same state, milestones and counters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.export import csv_rows
from incidents.importer import Importer, load_mapping, read_csv, read_jsonl
from incidents.models import ImportRun, Incident, TimelineEntry
from incidents.selectors import desk_user
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
S = Incident.State
START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
MILESTONE_STATE = {
    "classified_at": S.CLASSIFIED,
    "responded_at": S.RESPONDING,
    "acknowledged_at": S.RESPONDING,
    "escalated_at": S.ESCALATED,
    "held_at": S.ON_HOLD,
    "resolved_at": S.RESOLVED,
    "closed_at": S.CLOSED,
    "cancelled_at": S.CANCELLED,
}
EXPORTED = ["state", "received_at", "classified_at", "responded_at", "escalated_at", "held_at", "resolved_at",
            "closed_at", "cancelled_at", "escalation_level", "reopen_count", "priority", "impact", "urgency"]  # fmt: skip
DESK_EXPORT = Path(__file__).resolve().parents[2] / "incidents" / "import_mappings" / "desk-export.yaml"

histories = st.lists(
    st.tuples(st.sampled_from(S.values), st.sampled_from([0, 0, 1, 5, 30, 90, 600])),
    min_size=1,
    max_size=12,
)


def document(history: list[tuple[str, int]], impact: int, urgency: int) -> dict:
    at, events = START, []
    for state, gap in history:
        at += timedelta(minutes=gap)
        events.append({"at": at.isoformat(), "state": state})
    events[0].update(impact=impact, urgency=urgency)
    return {"external_id": "P-1", "title": "Generated", "events": events}


def import_records(records) -> Importer:
    importer = Importer(batch_size=50, mapping=None)
    for record in records:
        importer.add(record)
    importer.finish()
    return importer


def counts() -> tuple[int, int, int]:
    return Incident.objects.count(), TimelineEntry.objects.count(), ImportRun.objects.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, impact=st.integers(1, 3), urgency=st.integers(1, 3))
def test_replay_reimport_and_round_trip(history, impact, urgency):
    admin = UserFactory(username="prop-admin", is_superuser=True, is_staff=True)
    doc = document(history, impact, urgency)
    savepoint = transaction.savepoint()
    try:
        importer = import_records(read_jsonl([json.dumps(doc)]))
        assert importer.result.errors == []
        incident = Incident.objects.get(external_id="P-1")

        # milestones are a subset of the moves in the file
        moves = {(e["state"], e["at"]) for e, prev in zip(doc["events"][1:], doc["events"], strict=False)
                 if e["state"] != prev["state"]}  # fmt: skip
        for name, state in MILESTONE_STATE.items():
            value = getattr(incident, name)
            if value is not None:
                assert (state, value.isoformat()) in moves, (name, value, doc["events"])
        first = doc["events"][0]
        assert incident.history_started_late == (first["state"] != S.RECEIVED)
        if not incident.history_started_late:
            assert incident.received_at.isoformat() == first["at"]
        assert incident.escalation_level <= sum(1 for state, _ in moves if state == S.ESCALATED)

        # re-importing writes nothing
        before = counts()
        again = import_records(read_jsonl([json.dumps(doc)]))
        assert (again.result.imported, again.result.existing, counts()) == (0, 1, before)

        # export, then import into a desk without it: the same incident
        exported = "".join(csv_rows([incident], desk_user(admin)))
        expected = {name: getattr(incident, name) for name in EXPORTED}
    finally:
        transaction.savepoint_rollback(savepoint)
    savepoint = transaction.savepoint()
    try:
        importer = import_records(read_csv(exported.splitlines(keepends=True), load_mapping(DESK_EXPORT)))
        assert importer.result.errors == []
        back = Incident.objects.get(external_id="P-1")
        assert {name: getattr(back, name) for name in EXPORTED} == expected
    finally:
        transaction.savepoint_rollback(savepoint)
