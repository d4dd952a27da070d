from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from incidents import lifecycle, services
from incidents.models import Category, Domain, Incident, Membership, Team

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-2026")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save(update_fields=["password"])


def domain(slug: str) -> Domain:
    return Domain.objects.get(slug=slug)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["slug"]
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())
    tier = 1

    @factory.post_generation
    def domains(self, create, extracted, **kwargs):
        for slug in extracted or ["it_service"]:
            self.domains.add(domain(slug))


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["domain", "slug", "parent"]

    domain = factory.LazyFunction(lambda: domain("it_service"))
    parent = None
    slug = factory.Sequence(lambda n: f"cat{n}")
    name = factory.LazyAttribute(lambda c: c.slug.title())


def agent(team: Team | None = None, **kwargs) -> User:
    """A responder: a member of `team` (a new it_service team by default)."""
    user = UserFactory(**kwargs)
    Membership.objects.get_or_create(team=team or TeamFactory(), user=user)
    return user


def privacy_officer(team: Team | None = None) -> User:
    user = agent(team)
    user.user_permissions.add(Permission.objects.get(codename="view_confidential_reporter"))
    return User.objects.get(pk=user.pk)  # a fresh object: permissions are cached per instance


def report(reporter=None, **kwargs) -> Incident:
    """An incident in `received`, reported through the service like every channel does."""
    kwargs.setdefault("title", "VPN drops every ten minutes")
    kwargs.setdefault("description", "Since this morning the **VPN** disconnects.")
    if reporter is None and "reporter_email" not in kwargs:
        reporter = UserFactory()
    return services.create_incident(reporter=reporter, **kwargs)


def incident_in(state: str, *, domain_slug: str = "it_service", reporter=None, **kwargs) -> Incident:
    """An incident brought to `state` through the lifecycle functions, as a desk would."""
    team = TeamFactory(domains=[domain_slug])
    actor = agent(team)
    dom = domain(domain_slug)
    incident = report(reporter=reporter, domain=dom, **kwargs)
    S = Incident.State
    if state == S.RECEIVED:
        return incident
    if state == S.CANCELLED:
        return lifecycle.cancel_incident(incident, actor=actor, reason="spam")
    category = CategoryFactory(domain=dom)
    harm = "1" if dom.requires_harm_level else ""
    incident = lifecycle.classify_incident(
        incident, actor=actor, domain=dom, category=category, impact=2, urgency=2, team=team, harm_level=harm
    )
    if state == S.CLASSIFIED:
        return incident
    if state == S.ESCALATED:
        other = TeamFactory(domains=[domain_slug])
        return lifecycle.escalate_incident(incident, actor=actor, team=other, reason="needs specialists")
    incident = lifecycle.acknowledge_incident(incident, actor=actor)
    if state == S.RESPONDING:
        return incident
    if state == S.ON_HOLD:
        return lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")
    incident = lifecycle.resolve_incident(incident, actor=actor, summary="Restarted the VPN concentrator.")
    if state == S.RESOLVED:
        return incident
    assert state == S.CLOSED
    return lifecycle.close_incident(
        incident,
        actor=actor,
        cause="Memory leak in firmware",
        measures="Firmware upgraded",
        resolution_code="fixed",
    )


def responder_of(incident: Incident) -> User:
    """A member of the incident's team (or of a new team handling its domain)."""
    if incident.team_id:
        member = Membership.objects.filter(team_id=incident.team_id).first()
        return member.user if member else agent(incident.team)
    team = TeamFactory(domains=[incident.domain.slug if incident.domain else "it_service"])
    return agent(team)


def sla_policy(
    *, priority=None, domain_slug=None, response=30, resolution=240, warn=75, calendar=None, escalation=None
):
    from escalation.models import SlaPolicy

    return SlaPolicy.objects.create(
        name=f"P{priority or 'any'} {domain_slug or 'any'}", priority=priority,
        domain=domain(domain_slug) if domain_slug else None, response_minutes=response,
        resolution_minutes=resolution, warning_percent=warn, calendar=calendar, escalation_policy=escalation,
    )  # fmt: skip


def classified(
    *, priority_impact=1, priority_urgency=1, team=None, reporter=None, domain_slug="it_service", **kwargs
):
    """A reported incident classified by a team member (impact 1 x urgency 1 = P1 by default)."""
    team = team or TeamFactory(domains=[domain_slug])
    actor = agent(team)
    dom = domain(domain_slug)
    incident = report(reporter=reporter, domain=dom, **kwargs)
    return lifecycle.classify_incident(
        incident, actor=actor, domain=dom, category=CategoryFactory(domain=dom), impact=priority_impact,
        urgency=priority_urgency, team=team, harm_level="1" if dom.requires_harm_level else "",
    ), actor  # fmt: skip
