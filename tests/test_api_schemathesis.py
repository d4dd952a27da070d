"""schemathesis over /api/schema/ (issues 11 and 14, "Prove it"): every operation of the OpenAPI schema, called
with generated input by an agent and by an admin, never answers a 5xx, every answer conforms to the schema
(status code documented or a standard 4xx, content type, body), and no answer to the agent reads, and no call
by the agent changes, another team's restricted objects.

The desk is seeded once for the module (one outer transaction, rolled back at the end; each test and each
example runs in a savepoint inside it). Besides a few incidents the agent may see, team Y (security) and team
M (medical) hold restricted incidents with internal and public comments, an attachment, a problem that links
them: each carries a marker string. A check fails when any answer to the agent holds a marker, a hidden
incident's or problem's reference, or a hidden object's id under an incident or problem key; after every
agent call that may write (every method but GET, HEAD and OPTIONS) the hidden objects are compared with their
state when seeded (version, updated_at, comments, attachments, links). The first AIMED examples of each
operation whose path names an incident or a problem are also sent as the agent with the path pointed at each
hidden object.

Then the stateful run: the links schemathesis infers between operations (a created object's id fed to the
operations that take one), walked as the agent, with the same checks.

Bounded: SCHEMATHESIS_EXAMPLES examples per operation (2 by default; CI may raise it), no shrinking
deadline; SCHEMATHESIS_SCENARIOS stateful scenarios (10 by default). SCHEMATHESIS_PATH (a regular expression)
runs only the operations whose path matches it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.core.wsgi import get_wsgi_application
from django.db import connection, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from accounts.models import ApiToken
from incidents import lifecycle, problems, services
from incidents.models import Incident, Membership, Problem
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, classified, domain

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "2"))
SCENARIOS = int(os.environ.get("SCHEMATHESIS_SCENARIOS", "10"))
AIMED = 2  # examples per operation also aimed at each hidden object its path can name
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Keys under which an answer names an incident or a problem by id.
ID_KEYS = {"incident": "incidents", "problem": "problems"}


def _load() -> Any:
    """The schema /api/schema/ serves (the same generator), bound to the WSGI app for the calls."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(document, cls=DjangoJSONEncoder)))
    loaded.app = get_wsgi_application()
    return loaded


@dataclass
class Hidden:
    """Another team's restricted objects, which the agent may neither read nor change."""

    incidents: list[Incident] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    seeded: dict[str, Any] = field(default_factory=dict)

    def needles(self) -> list[str]:
        """Strings no answer to the agent may hold."""
        refs = [i.reference for i in self.incidents] + [p.reference for p in self.problems]
        return [*self.markers, *refs, *(f"/problems/{p.pk}/" for p in self.problems)]

    def ids(self) -> dict[str, set[int]]:
        return {"incidents": {i.pk for i in self.incidents}, "problems": {p.pk for p in self.problems}}

    def state(self) -> dict[str, Any]:
        """What a write would change: rows, comments, attachments, timeline and links."""
        result: dict[str, Any] = {}
        for incident in Incident.objects.filter(pk__in=[i.pk for i in self.incidents]).order_by("pk"):
            result[incident.reference] = {
                "row": (
                    incident.version,
                    incident.updated_at,
                    incident.state,
                    incident.team_id,
                    incident.assignee_id,
                    incident.title,
                    incident.description,
                    incident.priority,
                    incident.problem_id,
                    incident.parent_id,
                    incident.duplicate_of_id,
                    incident.domain_id,
                ),
                "comments": list(incident.comments.order_by("pk").values_list("pk", "body", "public")),
                "attachments": list(incident.attachments.order_by("pk").values_list("pk", "public")),
                "timeline": incident.timeline.count(),
                "children": list(Incident.objects.filter(parent=incident).values_list("pk", flat=True)),
            }
        for problem in Problem.objects.filter(pk__in=[p.pk for p in self.problems]).order_by("pk"):
            result[problem.reference] = {
                "row": (problem.version, problem.updated_at, problem.state, problem.title, problem.team_id),
                "incidents": sorted(problem.incidents.values_list("pk", flat=True)),
                "follow_ups": problem.follow_ups.count(),
            }
        return result


def _seed_hidden() -> Hidden:
    """Team Y handles security, team M medical; the agent's team handles neither."""
    hidden = Hidden()
    for slug, dom in (("team-y", "security"), ("team-m", "medical")):
        team = TeamFactory(slug=slug, domains=[dom])
        worker = UserFactory(username=f"worker-{slug}")
        Membership.objects.create(team=team, user=worker)
        reporter = UserFactory(username=f"reporter-{slug}")
        mark = f"zq14{dom[:3]}"
        hidden.markers += [f"{mark}title", f"{mark}descr", f"{mark}note", f"{mark}reply", f"{mark}file"]
        incident = services.create_incident(
            reporter=reporter, title=f"Case {mark}title", description=f"Seen {mark}descr today.",
            domain=domain(dom),
        )  # fmt: skip
        incident = lifecycle.classify_incident(
            incident, actor=worker, domain=domain(dom), category=CategoryFactory(domain=domain(dom)),
            impact=2, urgency=2, team=team, harm_level="1" if domain(dom).requires_harm_level else "",
        )  # fmt: skip
        services.add_comment(incident, author=worker, body=f"Internal {mark}note only", public=False)
        services.add_comment(incident, author=worker, body=f"Public {mark}reply here", public=True)
        services.add_attachment(
            incident, uploaded_by=worker,
            upload=SimpleUploadedFile(f"{mark}file.txt", b"log line\n", "text/plain"),
        )  # fmt: skip
        problem = problems.create_problem(
            actor=worker, title=f"Problem {mark}prob", team=team, category=incident.category,
            incidents=[incident],
        )  # fmt: skip
        hidden.markers.append(f"{mark}prob")
        hidden.incidents.append(Incident.objects.get(pk=incident.pk))
        hidden.problems.append(Problem.objects.get(pk=problem.pk))
    return hidden


@dataclass
class Desk:
    agent_token: str
    admin_token: str
    hidden: Hidden


@pytest.fixture(scope="module")
def desk(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Desk]:
    """Seeded once for the module, in a transaction that is rolled back after its last test.

    The app is called in process and closes the database connection when a request ends (Django's test
    client prevents that), which would end this transaction: the connection is kept open meanwhile.
    """
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            worker = agent()
            admin = UserFactory(username="schema-admin", is_superuser=True, is_staff=True)
            classified()
            classified(team=worker.teams.get())
            hidden = _seed_hidden()
            hidden.seeded = hidden.state()
            yield Desk(ApiToken.issue(worker)[1], ApiToken.issue(admin)[1], hidden)
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)


def _an_id_in(value: Any, ids: set[int]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in ids


def _walk(value: Any, hidden_ids: dict[str, set[int]], key: str = "", listed: bool = False) -> str | None:
    """The first place where an answer names a hidden incident or problem by id: `incident`, `incident_id`,
    `problem`, `problem_id`, an item of an `incidents` or `problems` list, or the `id` of an INC- object. (A
    scalar under `incidents` is a count, not an id.)"""
    if isinstance(value, dict):
        for sub_key, sub in value.items():
            incident_like = str(value.get("reference", "")).startswith("INC-")
            if sub_key == "id" and incident_like and _an_id_in(sub, hidden_ids["incidents"]):
                return f"id {sub} of a hidden incident"
            found = _walk(sub, hidden_ids, sub_key)
            if found:
                return found
        return None
    if isinstance(value, list):
        for item in value:
            found = _walk(item, hidden_ids, key, listed=True)
            if found:
                return found
        return None
    kind = ID_KEYS.get(key.removesuffix("s") if listed else key.removesuffix("_id"))
    if kind and (listed or not key.endswith("s")) and _an_id_in(value, hidden_ids[kind]):
        return f"{key}: {value} (a hidden {kind.removesuffix('s')})"
    return None


def leak_check(hidden: Hidden) -> Callable[..., None]:
    needles = hidden.needles()
    hidden_ids = hidden.ids()

    def no_hidden_object_reaches_the_agent(ctx: Any, response: Any, case: Any) -> None:
        text = response.text_lossy()
        for needle in needles:
            assert needle not in text, (
                f"The agent's answer holds {needle!r}, of another team's restricted object"
            )
        try:
            body = response.json()
        except ValueError:
            return
        found = _walk(body, hidden_ids)
        assert found is None, f"The agent's answer names another team's restricted object: {found}"

    return no_hidden_object_reaches_the_agent


def aimed_at_hidden(case: Any, hidden: Hidden) -> Iterator[dict[str, Any]]:
    """The case's path parameters pointed at each hidden object its path can name (a generated reference
    would almost never hit one)."""
    params = dict(case.path_parameters or {})
    if "reference" in params:
        for incident in hidden.incidents:
            aimed = {**params, "reference": incident.reference}
            if "attachment_id" in params:
                aimed["attachment_id"] = incident.attachments.values_list("pk", flat=True).first()
            yield aimed
    elif case.path.startswith("/api/v1/problems/{id}/"):
        for problem in hidden.problems:
            yield {**params, "id": problem.pk}


def _state_tables() -> list[str]:
    """The tables Hidden.state() reads: the incidents, problems, comments, attachments, timeline and follow-ups."""
    related = [
        Incident._meta.get_field(name).related_model for name in ("comments", "attachments", "timeline")
    ]
    related.append(Problem._meta.get_field("follow_ups").related_model)
    return sorted(
        {Incident._meta.db_table, Problem._meta.db_table, *(model._meta.db_table for model in related)}
    )


def writes_so_far() -> int | None:
    """Rows inserted, updated or deleted so far in this transaction in the tables Hidden.state() reads, as
    PostgreSQL counts them (pg_stat_xact_user_tables; rows written in a savepoint rolled back since count too).
    None on another database, which has no such count."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables"
            " WHERE schemaname = current_schema() AND relname = ANY(%s)",
            [_state_tables()],
        )
        return int(cursor.fetchone()[0])


def assert_unchanged(hidden: Hidden, *, writes_before: int | None = None) -> None:
    """The hidden objects are as seeded. Given the count of writes before the agent's calls: when the calls wrote
    no row of the tables the state is read from, nothing of it can have changed, and the one count query stands
    for the state's queries (most generated writes are refused and write nothing); any write, and any database
    without the count, compares the whole state."""
    if writes_before is not None and writes_so_far() == writes_before:
        return
    assert hidden.state() == hidden.seeded, "A call by the agent changed another team's restricted objects"


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
schema = _load()
if os.environ.get("SCHEMATHESIS_PATH"):  # to run a part, e.g. SCHEMATHESIS_PATH=/incidents/
    schema = schema.include(path_regex=os.environ["SCHEMATHESIS_PATH"])


@pytest.fixture
def aims() -> dict[str, int]:
    """How many more examples of this operation are also aimed at the hidden objects (the explicit phase may
    bring hundreds of examples; a few aimed ones find a leak)."""
    return {"left": AIMED}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_every_operation_without_5xx_as_documented_and_within_visibility(case, desk, aims):
    agent = {
        "headers": {"Authorization": f"Token {desk.agent_token}"},
        "checks": [*CHECKS, leak_check(desk.hidden)],
    }
    # Each example in a savepoint of its own: what the admin changed is gone before the next agent call.
    with transaction.atomic():
        writes_before = writes_so_far()
        case.call_and_validate(**agent)
        generated = case.path_parameters
        aimed = list(aimed_at_hidden(case, desk.hidden)) if aims["left"] > 0 else []
        aims["left"] -= bool(aimed)
        for params in aimed:
            case.path_parameters = params
            case.call_and_validate(**agent)
        case.path_parameters = generated
        if case.method.upper() not in SAFE_METHODS:  # a read changes nothing; its answer is checked above
            assert_unchanged(desk.hidden, writes_before=writes_before)
        case.call_and_validate(headers={"Authorization": f"Token {desk.admin_token}"}, checks=CHECKS)
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_agent_following_the_stateful_links_reads_and_changes_nothing_hidden(desk):
    machine = schema.as_state_machine()
    assert machine.schema.statistic.transitions.total > 0, "schemathesis inferred no links to follow"
    checks = [*CHECKS, leak_check(desk.hidden)]

    class AsTheAgent(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Token {desk.agent_token}"}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=checks, transport_kwargs=kwargs)

        def teardown(self) -> None:
            assert_unchanged(desk.hidden)
            super().teardown()

    with transaction.atomic():
        AsTheAgent.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=6,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
        )
        transaction.set_rollback(True)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_write_count_stands_for_the_state_only_when_nothing_was_written(desk, django_assert_num_queries):
    """assert_unchanged's shortcut: a call that wrote no row of the state's tables costs one query; any write to
    them (even one rolled back since) compares the whole state, and a change to a hidden object still fails."""
    hidden = desk.hidden
    with transaction.atomic():
        before = writes_so_far()
        assert Incident.objects.filter(pk=hidden.incidents[0].pk).count() == 1  # a read writes nothing
        with django_assert_num_queries(1):
            assert_unchanged(hidden, writes_before=before)
        with transaction.atomic():
            Incident.objects.filter(pk=hidden.incidents[0].pk).update(title="changed")
            transaction.set_rollback(True)
        assert writes_so_far() != before
        assert_unchanged(hidden, writes_before=before)  # rolled back: the whole state is compared, and equal
        comment = hidden.incidents[1].comments.order_by("pk").first()
        comment.body = "changed by the agent"
        comment.save(update_fields=["body"])
        with pytest.raises(AssertionError, match="changed another team's restricted objects"):
            assert_unchanged(hidden, writes_before=before)
        transaction.set_rollback(True)
