from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction

from escalation.models import (
    BusinessCalendar,
    EscalationPolicy,
    EscalationStep,
    Schedule,
    ScheduleMember,
    ScheduleOverride,
    SlaPolicy,
    SlaTarget,
    WebhookEndpoint,
)
from incidents import deskconfig
from incidents.models import Category, Membership, Qualification, QualificationHolder, Team
from interviews import cases
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, domain, report
from tests.interviews.helpers import case_doc

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("desk_config", *args, stdout=out)
    return out.getvalue()


def people() -> dict:
    return {name: UserFactory(username=name) for name in ("ann", "bob", "cleo", "dan")}


def build_configuration(users: dict) -> None:
    """One of everything the file holds, made the way an admin would (ORM and domain functions)."""
    licence = Qualification.objects.create(slug="licence", name="Nursing licence")
    QualificationHolder.objects.create(
        qualification=licence, user=users["cleo"], valid_from=date(2026, 1, 1), valid_until=date(2027, 12, 31)
    )
    QualificationHolder.objects.create(qualification=licence, user=users["dan"])
    desk = TeamFactory(slug="desk", name="Service desk", domains=["it_service"])
    desk.manager = users["ann"]
    desk.save()
    for user in (users["ann"], users["bob"]):
        Membership.objects.create(team=desk, user=user)
    ward = TeamFactory(slug="ward", name="Ward safety", tier=2, domains=["medical"])
    Membership.objects.create(team=ward, user=users["cleo"])
    network = CategoryFactory(domain=domain("it_service"), slug="network", name="Network")
    Category.objects.create(
        domain=domain("it_service"), parent=network, slug="vpn", name="VPN", default_team=desk
    )
    Category.objects.create(
        domain=domain("medical"),
        slug="falls",
        name="Falls",
        default_team=ward,
        required_qualification=licence,
    )
    office = BusinessCalendar.objects.create(
        slug="office", name="Office", time_zone="Europe/Berlin", weekly_hours={"0": [["09:00", "17:00"]]},
        holiday_country="DE", extra_holidays=["2026-12-24"],
    )  # fmt: skip
    hook = WebhookEndpoint.objects.create(slug="chat", name="Chat", url="http://127.0.0.1:9/hook")
    rota = Schedule.objects.create(
        team=desk, slug="desk-rota", name="Desk rota", time_zone="Europe/Berlin",
        start=datetime(2026, 1, 5, 7, tzinfo=UTC), shift_length=timedelta(hours=12),
    )  # fmt: skip
    ScheduleMember.objects.create(schedule=rota, user=users["ann"], position=0)
    ScheduleMember.objects.create(schedule=rota, user=users["bob"], position=1)
    ScheduleOverride.objects.create(
        schedule=rota, user=users["dan"], start=datetime(2026, 2, 1, tzinfo=UTC),
        end=datetime(2026, 2, 2, tzinfo=UTC), reason="holiday",
    )  # fmt: skip
    ladder = EscalationPolicy.objects.create(slug="ladder", name="Ladder", team=desk)
    EscalationStep.objects.create(
        policy=ladder, position=1, trigger="unacknowledged", delay_minutes=10, notify_schedule=rota
    )
    EscalationStep.objects.create(
        policy=ladder, position=2, trigger="sla_share", share_percent=100, notify_manager=True,
        notify_webhook=hook, repeat_count=2, repeat_minutes=30,
    )  # fmt: skip
    p1 = SlaPolicy.objects.create(
        name="P1", priority=1, calendar=office, response_minutes=15, resolution_minutes=240,
        escalation_policy=ladder,
    )  # fmt: skip
    SlaTarget.objects.create(policy=p1, slug="report", name="Report", minutes=60, harm_levels=["3b"])
    cases.apply_case_document(case_doc(slug="expired-cert"))
    from intake.models import Integration

    prometheus = Integration(
        slug="prometheus", name="Prometheus", domain=domain("it_service"), category=network, team=desk,
        severity_mapping={"critical": {"impact": 1, "urgency": 1}, "warning": {"impact": 2, "urgency": 3}},
    )  # fmt: skip
    prometheus.set_new_key()
    prometheus.save()


def test_export_then_apply_on_an_empty_database_then_export_is_identical(tmp_path):
    users = people()
    with transaction.atomic():
        build_configuration(users)
        first = run("export")
        transaction.set_rollback(True)  # back to an empty desk: only the users and seeded data are left
    assert not Team.objects.exists()
    assert not SlaPolicy.objects.exists()
    data = yaml.safe_load(first)
    assert {k for k, v in data.items() if v} == {
        "version", "domains", "qualifications", "teams", "categories", "calendars", "webhooks", "schedules",
        "escalation_policies", "sla_policies", "interviews", "integrations",
    }  # fmt: skip
    assert "secret" not in first
    path = tmp_path / "desk.yaml"
    path.write_text(first)

    changed = run("apply", str(path))

    assert "create teams desk" in changed
    assert "create sla_policies P1" in changed
    assert run("export") == first
    assert Membership.objects.filter(team__slug="desk").count() == 2
    assert len(WebhookEndpoint.objects.get(slug="chat").secret) >= 40  # a fresh secret, never from the file


def test_the_export_holds_each_qualification_holder_with_their_validity_dates():
    build_configuration(people())

    data = yaml.safe_load(run("export"))

    assert data["qualifications"] == [
        {
            "slug": "licence",
            "name": "Nursing licence",
            "holders": [
                {"user": "cleo", "valid_from": "2026-01-01", "valid_until": "2027-12-31"},
                {"user": "dan", "valid_from": None, "valid_until": None},
            ],
        }
    ]


def test_a_file_that_applies_equals_the_api_calls_it_stands_for(tmp_path):
    """The qualifications section and PATCH /api/v1/users/{username}/ validate and write holds alike."""
    users = people()
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    Qualification.objects.create(slug="licence", name="Nursing licence")
    Qualification.objects.create(slug="clearance", name="Security clearance")
    api = client_for(admin)
    holds = {
        "cleo": [
            {"qualification": "clearance", "valid_from": None, "valid_until": "2026-06-30"},
            {"qualification": "licence", "valid_from": "2026-01-01", "valid_until": "2027-12-31"},
        ],
        "dan": [{"qualification": "licence", "valid_from": None, "valid_until": None}],
    }

    def state() -> tuple[dict, list]:
        answers = {name: api.get(f"/api/v1/users/{name}/").json()["qualifications"] for name in users}
        return answers, yaml.safe_load(run("export"))["qualifications"]

    with transaction.atomic():
        for name, held in holds.items():
            assert (
                api.patch(f"/api/v1/users/{name}/", {"qualifications": held}, format="json").status_code
                == 200
            )
        by_api = state()
        transaction.set_rollback(True)
    assert not QualificationHolder.objects.exists()
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump({"qualifications": by_api[1]}))

    assert run("apply", str(path)).splitlines() == ["Changed:", "  update qualifications clearance",
                                                    "  update qualifications licence"]  # fmt: skip
    assert state() == by_api
    assert by_api[0]["cleo"] == holds["cleo"]

    # The same mistake is refused by both, naming the same field.
    wrong = {"qualification": "licence", "valid_from": "2026-01-01", "valid_until": "2025-01-01"}
    answer = api.patch("/api/v1/users/dan/", {"qualifications": [wrong]}, format="json")
    assert answer.status_code == 400
    assert answer.json()["qualifications"] == {"0": {"valid_until": ["Before valid_from."]}}
    by_api[1][1]["holders"][0].update(valid_from="2026-01-01", valid_until="2025-01-01")
    path.write_text(yaml.safe_dump({"qualifications": by_api[1]}))
    with pytest.raises(
        CommandError, match=r"qualifications\[1\]\.holders\[0\]\.valid_until: Before valid_from\."
    ):
        run("apply", str(path))


def test_a_holder_given_as_a_bare_username_holds_without_limits(tmp_path):
    people()
    path = tmp_path / "desk.yaml"
    path.write_text(
        yaml.safe_dump({"qualifications": [{"slug": "licence", "name": "L", "holders": ["ann"]}]})
    )

    run("apply", str(path))

    hold = QualificationHolder.objects.get()
    assert (hold.user.username, hold.valid_from, hold.valid_until) == ("ann", None, None)
    assert run("apply", str(path)).strip() == "Nothing to change."


def test_applying_the_same_file_twice_changes_nothing_and_writes_nothing(tmp_path):
    build_configuration(people())
    path = tmp_path / "desk.yaml"
    path.write_text(run("export"))
    ids = (
        list(EscalationStep.objects.values_list("id", flat=True)),
        list(SlaTarget.objects.values_list("id", flat=True)),
        list(ScheduleMember.objects.values_list("id", flat=True)),
        list(Membership.objects.values_list("id", "joined_at")),
    )
    secret = WebhookEndpoint.objects.get().secret

    assert run("apply", str(path)) == "Nothing to change.\n"
    assert run("apply", str(path)) == "Nothing to change.\n"

    assert ids == (
        list(EscalationStep.objects.values_list("id", flat=True)),
        list(SlaTarget.objects.values_list("id", flat=True)),
        list(ScheduleMember.objects.values_list("id", flat=True)),
        list(Membership.objects.values_list("id", "joined_at")),
    )
    assert WebhookEndpoint.objects.get().secret == secret


def _edited(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["teams"][0]["members"] = ["ann", "dan"]  # bob leaves the desk, dan joins
    data["teams"] = [t for t in data["teams"] if t["slug"] != "ward"] + [
        {"slug": "ward", "name": "Ward safety team", "tier": 2, "email": "", "domains": ["medical"],
         "manager": None, "members": ["cleo"]},
    ]  # fmt: skip
    data["sla_policies"][0]["targets"][0]["minutes"] = 90
    data["escalation_policies"][0]["steps"].pop()
    data["webhooks"] = []
    return data


def test_dry_run_lists_the_changes_and_changes_nothing_then_apply_makes_them(tmp_path):
    build_configuration(people())
    data = yaml.safe_load(run("export"))
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(_edited(data)))

    preview = run("apply", str(path), "--dry-run")

    assert preview.startswith("Would change:")
    for line in ("update teams desk", "update teams ward", "update escalation_policies ladder",
                 "delete webhooks chat", "update sla_policies P1"):  # fmt: skip
        assert line in preview
    assert yaml.safe_load(run("export")) == data  # the dry run left everything as it was

    assert "Changed:" in run("apply", str(path))
    assert sorted(Membership.objects.filter(team__slug="desk").values_list("user__username", flat=True)) == [
        "ann",
        "dan",
    ]
    assert SlaTarget.objects.get().minutes == 90
    assert EscalationStep.objects.count() == 1
    assert not WebhookEndpoint.objects.exists()
    assert run("apply", str(path)) == "Nothing to change.\n"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["sla_policies"][0]["targets"][0].update(minutes=0),
            "sla_policies[0].targets[0].minutes:",
        ),
        (lambda d: d["sla_policies"][0].update(warning_percent=100), "sla_policies[0].warning_percent:"),
        (
            lambda d: d["escalation_policies"][0]["steps"][1].update(share_percent=None),
            "escalation_policies[0].steps[1].share_percent: A share between 1 and 500 %",
        ),
        (lambda d: d["calendars"][0].update(time_zone="Mars/Olympus"), "calendars[0].time_zone:"),
        (
            lambda d: d["qualifications"][0]["holders"][0].update(valid_until="2025-12-31"),
            "qualifications[0].holders[0].valid_until: Before valid_from.",
        ),
        (
            lambda d: d["qualifications"][0]["holders"].append("cleo"),
            "qualifications[0].holders: A person is listed twice.",
        ),
        (lambda d: d["schedules"][0].update(members=["ann", "ghost"]), "schedules[0].members:"),
        (lambda d: d["teams"][0].update(domains=["astrology"]), "teams[0].domains:"),
        (
            lambda d: d["categories"].append({"domain": "it_service", "path": "x/y", "name": "Y"}),
            "categories[3].path: The parent 'x'",
        ),
        (
            lambda d: d["categories"].append(dict(d["categories"][0])),
            "categories[3].path: 'it_service:network' is already categories[0]",
        ),
        (lambda d: d["webhooks"][0].update(url="http://169.254.169.254/latest"), "webhooks[0].url:"),
        (lambda d: d["interviews"]["cases"][0].update(title=""), "interviews.cases[0].title:"),
        (lambda d: d.update(colours=[]), "colours: unknown section"),
        (
            lambda d: d["sla_policies"][0]["targets"].append(dict(d["sla_policies"][0]["targets"][0])),
            "sla_policies P1: refused:",
        ),
    ],
)
def test_validation_errors_name_the_path_and_nothing_is_applied(tmp_path, edit, message):
    build_configuration(people())
    data = yaml.safe_load(run("export"))
    data["teams"].append({"slug": "newcomers", "name": "New", "tier": 1, "domains": ["it_service"]})
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))

    with pytest.raises(CommandError) as error:
        run("apply", str(path))

    assert message in str(error.value)
    assert not Team.objects.filter(slug="newcomers").exists()  # the valid part before the error was not kept


def test_a_team_the_file_drops_is_removed_unless_incidents_still_use_it(tmp_path):
    build_configuration(people())
    TeamFactory(slug="old-team")
    data = yaml.safe_load(run("export"))
    data["teams"] = [t for t in data["teams"] if t["slug"] != "old-team"]
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(data))

    assert "delete teams old-team" in run("apply", str(path))
    assert not Team.objects.filter(slug="old-team").exists()

    incident = report(domain=domain("it_service"))
    in_use = TeamFactory(slug="busy")
    incident.team = in_use
    incident.save(update_fields=["team"])
    with pytest.raises(CommandError, match="teams: 'busy' is not in the file but is still used by incidents"):
        run("apply", str(path))
    assert Team.objects.filter(slug="busy").exists()


PLUGGED: list = []


def export_plugged() -> list[dict]:
    return [{"slug": "monitoring"}]


def apply_plugged(items, *, dry_run):
    PLUGGED.append((items, dry_run))
    for i, item in enumerate(items):
        if "slug" not in item:
            raise ValueError(f"plugged[{i}].slug: This field is required.")
    return [
        f"would create integration {i['slug']}" if dry_run else f"create integration {i['slug']}"
        for i in items
    ]


def test_another_app_plugs_in_a_section_through_the_setting(tmp_path, settings):
    settings.DESK_CONFIG_SECTIONS = [
        *settings.DESK_CONFIG_SECTIONS,
        ("plugged", f"{__name__}.export_plugged", f"{__name__}.apply_plugged"),
    ]
    PLUGGED.clear()
    assert yaml.safe_load(run("export"))["plugged"] == [{"slug": "monitoring"}]
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump({"plugged": [{"slug": "grafana"}]}))

    assert "would create integration grafana" in run("apply", str(path), "--dry-run")
    assert PLUGGED == [([{"slug": "grafana"}], True)]

    path.write_text(yaml.safe_dump({"teams": [], "plugged": [{"name": "no slug"}]}))
    TeamFactory(slug="kept")
    with pytest.raises(CommandError, match=r"plugged\[0\].slug: This field is required"):
        run("apply", str(path))
    assert Team.objects.filter(slug="kept").exists()  # the teams section's removal was rolled back


def test_the_example_file_in_the_docs_applies_cleanly():
    """docs/desk-config.example.yaml is the demo configuration; it must stay valid."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "desk-config.example.yaml"
    data = yaml.safe_load(example.read_text())
    usernames = set()
    for team in data["teams"]:
        usernames |= {*team["members"], *([team["manager"]] if team["manager"] else [])}
    for schedule in data["schedules"]:
        usernames |= set(schedule["members"])
    for qualification in data["qualifications"]:
        usernames |= set(qualification["holders"])
    for name in usernames:
        UserFactory(username=name)

    assert deskconfig.apply_config(data, dry_run=False)
    assert deskconfig.apply_config(data, dry_run=False) == []
