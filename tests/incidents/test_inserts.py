"""incidents.inserts: a new incident and its timeline entry are inserted with a statement compiled once per
process, and the rows are those Django's own INSERT writes."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Model
from django.db.models.sql.compiler import SQLInsertCompiler
from django.test.utils import CaptureQueriesContext

from incidents import services
from incidents.inserts import CompiledInsert, bulk_insert
from incidents.models import Incident, TimelineEntry
from tests.factories import CategoryFactory, UserFactory, domain

pytestmark = pytest.mark.django_db


def reported(**kwargs) -> Incident:
    if "reporter" not in kwargs:
        kwargs.update(reporter=UserFactory(), category=CategoryFactory(domain=domain("medical")))
    return services.create_incident(
        title="  Wrong dose given ", description="The **pump** was set to 10 ml/h.", impact=2, urgency=1,
        outcome="no_harm", harm_level="1", confidential=True, **kwargs,
    )  # fmt: skip


def stored(model: type[Model], pk: int) -> dict:
    row = model.objects.get(pk=pk)
    return {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields if f.attname != "id"}


def test_the_second_report_is_inserted_without_compiling_an_insert():
    reported()
    reporter, category = UserFactory(), CategoryFactory(domain=domain("medical"))
    compiled = []
    as_sql = SQLInsertCompiler.as_sql

    def counting(compiler):
        compiled.append(compiler.query.model)
        return as_sql(compiler)

    with (
        mock.patch.object(SQLInsertCompiler, "as_sql", counting),
        CaptureQueriesContext(connection) as queries,
    ):
        incident = reported(reporter=reporter, category=category)

    assert Incident not in compiled, compiled
    assert TimelineEntry not in compiled, compiled
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert [sql.split('"')[1] for sql in inserts] == ["incidents_incident", "incidents_timelineentry"]
    assert incident.timeline.get().incident_id == incident.pk


def test_the_rows_are_those_djangos_own_insert_writes():
    reported()  # compiles the statements
    compiled = reported(reporter_email="caller@example.org")
    with mock.patch.object(CompiledInsert, "_do_insert", Model._do_insert):
        plain = reported(reporter_email="caller@example.org")

    left, right = stored(Incident, compiled.pk), stored(Incident, plain.pk)
    for varying in (
        "tracking_token",
        "received_at",
        "created_at",
        "updated_at",
        "reporter_id",
        "category_id",
    ):
        assert (left.pop(varying) is None) == (right.pop(varying) is None), varying
    assert left == right
    left, right = (
        stored(TimelineEntry, compiled.timeline.get().pk),
        stored(TimelineEntry, plain.timeline.get().pk),
    )
    for varying in ("incident_id", "at", "actor_id"):
        assert (left.pop(varying) is None) == (right.pop(varying) is None), varying
    assert left == right


def test_a_check_constraint_refused_on_the_compiled_insert_is_still_a_validation_error():
    reported()  # compiles the statement

    with pytest.raises(ValidationError) as refused:
        services._save_checked(Incident(title="out of range", reporter_email="a@example.org", priority=9))

    assert "incident_priority_1_5" in str(refused.value)


def test_a_bulk_insert_writes_what_bulk_create_writes_and_compiles_once():
    incident = reported()
    actor = UserFactory()

    def entries() -> list[TimelineEntry]:
        return [
            TimelineEntry(incident=incident, kind="comment", actor=actor, data={"n": n}, public=n % 2 == 0)
            for n in range(3)
        ]

    bulk_insert(entries())  # compiles the statement
    compiled = []
    as_sql = SQLInsertCompiler.as_sql

    def counting(compiler):
        compiled.append(compiler.query.model)
        return as_sql(compiler)

    ours = entries()
    with mock.patch.object(SQLInsertCompiler, "as_sql", counting):
        bulk_insert(ours)
    theirs = TimelineEntry.objects.bulk_create(entries())

    if connection.vendor == "postgresql":
        assert compiled == []
    assert [e.pk for e in ours] == sorted(e.pk for e in ours)
    assert all(e.pk is not None and not e._state.adding for e in ours)
    for mine, django in zip(ours, theirs, strict=True):
        assert mine.at is not None
        left, right = stored(TimelineEntry, mine.pk), stored(TimelineEntry, django.pk)
        assert abs((left.pop("at") - right.pop("at")).total_seconds()) < 60
        assert left == right
