"""A small desk with every role of SPEC section 1 and incidents that each role may, may not, or may only as a
reporter see. Used by the authorisation matrix and the visibility tests.

Every incident carries a marker word in its title and another in an internal note, so a test can tell
from any response body whether something hidden leaked: a title marker must never reach someone who may not
see the incident, a note marker never anyone who does not see it as a responder. The confidential reporter
(a person of their own, not a role) has an address and username that only privacy officers and superusers
may ever read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents import lifecycle, problems, services, timeline
from incidents.models import FollowUpAction, Incident, Membership, Problem, Team
from tests.factories import CategoryFactory, TeamFactory, UserFactory, domain

RESTRICTED = ("security", "medical")
WHISTLEBLOWER_EMAIL = "whistle.c7q@example.org"
WHISTLEBLOWER_USERNAME = "whistleblower-c7q"

# The roles of issue 11's matrix. Each authenticated role also reported a security incident (the
# "responder who reported" variant) and a confidential IT incident (the "confidential reporter" variant).
ROLES = (
    "anonymous", "reporter_a", "reporter_b", "agent_x", "agent_y", "security", "medical", "manager",
    "privacy_officer", "superuser",
)  # fmt: skip
VARIANTS = ("reported_restricted", "reported_confidential")


@dataclass
class Target:
    key: str
    incident: Incident
    marker: str  # in the title
    note: str  # in an internal note (responders only)
    attachment_id: int = 0


@dataclass
class World:
    users: dict[str, Any] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    problems: dict[str, Problem] = field(default_factory=dict)
    problem_markers: dict[str, str] = field(default_factory=dict)
    follow_up: FollowUpAction | None = None

    def user(self, role: str) -> Any:
        return self.users.get(role)

    def targets_for(self, role: str) -> list[Target]:
        keys = ["it", "security", "medical", "confidential", "variant_sec:agent_x"]
        if role != "anonymous":
            keys += [f"variant_sec:{role}", f"variant_conf:{role}"]
        return [self.targets[k] for k in dict.fromkeys(keys)]


# --- the oracle: SPEC section 1 written out independently of incidents.selectors ------------------------


def oracle_sees_as(world: World, role: str, incident: Incident) -> str | None:
    """'responder', 'reporter' or None, straight from SPEC section 1 and issue 11."""
    user = world.user(role)
    if user is None:
        return None
    if user.is_superuser:
        return "responder"
    teams = list(Team.objects.filter(memberships__user=user).prefetch_related("domains"))
    if teams:
        restricted = incident.domain is not None and incident.domain.restricted
        handled = {d.pk for t in teams for d in t.domains.all()}
        if not restricted or incident.domain_id in handled:
            return "responder"
    if incident.reporter_id == user.pk:
        return "reporter"
    return None


def oracle_is_responder(world: World, role: str) -> bool:
    user = world.user(role)
    return user is not None and (user.is_superuser or Membership.objects.filter(user=user).exists())


def oracle_sees_problem(world: World, role: str, problem: Problem) -> bool:
    user = world.user(role)
    if user is None or not oracle_is_responder(world, role):
        return False
    if user.is_superuser or problem.domain is None or not problem.domain.restricted:
        return True
    return Team.objects.filter(memberships__user=user, domains=problem.domain).exists()


def oracle_sees_confidential(world: World, role: str) -> bool:
    user = world.user(role)
    return user is not None and (user.is_superuser or user.has_perm("incidents.view_confidential_reporter"))


# --- building it -----------------------------------------------------------------------------------------


def _classify(incident: Incident, team: Team, actor: Any) -> Incident:
    dom = incident.domain or domain("it_service")
    return lifecycle.classify_incident(
        incident, actor=actor, domain=dom, category=CategoryFactory(domain=dom), impact=2, urgency=2,
        team=team, harm_level="1" if dom.requires_harm_level else "",
    )  # fmt: skip


def _target(
    world: World, key: str, *, reporter: Any, domain_slug: str, team: str, confidential: bool = False
) -> Target:
    n = len(world.targets)
    marker, note = f"zqt{n:02d}title", f"zqn{n:02d}note"
    responder = world.users["_" + team]
    incident = services.create_incident(
        reporter=reporter, title=f"Matrix {marker} case", description="Something broke.",
        domain=domain(domain_slug), confidential=confidential,
        reporter_email="" if reporter is not None else WHISTLEBLOWER_EMAIL,
    )  # fmt: skip
    incident = _classify(incident, world.teams[team], responder)
    services.add_comment(incident, author=responder, body=f"Internal {note} only", public=False)
    services.add_comment(incident, author=responder, body="We are looking into it.", public=True)
    attachment = services.add_attachment(
        incident, uploaded_by=responder, upload=SimpleUploadedFile("log.txt", b"log line\n", "text/plain")
    )
    incident.refresh_from_db()
    target = Target(key, incident, marker, note, attachment.pk)
    world.targets[key] = target
    return target


def build_world() -> World:
    world = World()
    x = TeamFactory(slug="team-x", domains=["it_service"])
    y = TeamFactory(slug="team-y", domains=["it_service"])
    sec = TeamFactory(slug="team-sec", domains=["security"])
    med = TeamFactory(slug="team-med", domains=["medical"])
    world.teams = {"x": x, "y": y, "sec": sec, "med": med}

    def member(username: str, team: Team, **kwargs: Any) -> Any:
        user = UserFactory(username=username, **kwargs)
        Membership.objects.get_or_create(team=team, user=user)
        return user

    world.users["anonymous"] = None
    world.users["reporter_a"] = UserFactory(username="rep-a")
    world.users["reporter_b"] = UserFactory(username="rep-b")
    world.users["agent_x"] = member("agent-x", x)
    world.users["agent_y"] = member("agent-y", y)
    world.users["security"] = member("sec-responder", sec)
    world.users["medical"] = member("med-responder", med)
    world.users["manager"] = member("manager-x", x)
    x.manager = world.users["manager"]
    x.save(update_fields=["manager"])
    officer = member("privacy-officer", y)
    officer.user_permissions.add(Permission.objects.get(codename="view_confidential_reporter"))
    world.users["privacy_officer"] = type(officer).objects.get(pk=officer.pk)
    world.users["superuser"] = UserFactory(username="root", is_superuser=True, is_staff=True)
    # Responders who only do the desk's work in the world (never a role under test).
    world.users["_x"] = member("worker-x", x)
    world.users["_sec"] = member("worker-sec", sec)
    world.users["_med"] = member("worker-med", med)
    whistleblower = UserFactory(username=WHISTLEBLOWER_USERNAME, email=WHISTLEBLOWER_EMAIL)

    _target(world, "it", reporter=world.users["reporter_a"], domain_slug="it_service", team="x")
    _target(world, "security", reporter=world.users["reporter_b"], domain_slug="security", team="sec")
    _target(world, "medical", reporter=world.users["reporter_a"], domain_slug="medical", team="med")
    conf = _target(
        world, "confidential", reporter=whistleblower, domain_slug="it_service", team="x", confidential=True
    )
    # The desk told the confidential reporter by mail: that entry names them.
    timeline.record_notification(
        incident=conf.incident, channel="email", recipient=WHISTLEBLOWER_EMAIL, event="received",
        version=conf.incident.version,
    )  # fmt: skip
    for role in ROLES[1:]:
        user = world.users[role]
        _target(world, f"variant_sec:{role}", reporter=user, domain_slug="security", team="sec")
        _target(
            world,
            f"variant_conf:{role}",
            reporter=user,
            domain_slug="it_service",
            team="x",
            confidential=True,
        )

    worker = world.users["_x"]
    it_problem = problems.create_problem(
        actor=world.users["superuser"], title="Problem zqpitp printers", team=x,
        incidents=[world.targets["it"].incident],
    )  # fmt: skip
    # A restricted incident linked to an open-domain problem (only its team may link it).
    problems.link_incidents(
        it_problem, actor=world.users["superuser"], incidents=[world.targets["security"].incident]
    )
    sec_problem = problems.create_problem(
        actor=world.users["_sec"], title="Problem zqpsecp phishing", team=sec,
        category=world.targets["security"].incident.category, incidents=[],
    )  # fmt: skip
    world.problems = {
        "it": Problem.objects.get(pk=it_problem.pk),
        "security": Problem.objects.get(pk=sec_problem.pk),
    }
    world.problem_markers = {"it": "zqpitp", "security": "zqpsecp"}
    world.follow_up = problems.add_follow_up(
        world.problems["it"], actor=worker, title="Replace toner", owner=worker, due_date=date(2030, 1, 1)
    )
    return world
