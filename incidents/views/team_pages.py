"""The responders' team pages: the teams, and one team's members, open incidents and who is on call."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from .. import hooks, selectors
from ..models import Team
from ..permissions import responder_or_404

ATTENTION_CAP = 1000


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    responder_or_404(request)
    teams = Team.objects.select_related("manager").prefetch_related("domains", "members")
    return render(request, "incidents/teams.html", {"teams": teams})


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    responder_or_404(request)
    team = get_object_or_404(Team.objects.select_related("manager").prefetch_related("domains"), slug=slug)
    members = team.memberships.select_related("user").order_by("user__username")
    open_count = selectors.incidents_visible_to(request.user).open().filter(team=team)[:ATTENTION_CAP].count()
    context = {
        "team": team,
        "members": members,
        "open_count": open_count,
        **hooks.team_page_context(team, at=timezone.now()),
    }
    return render(request, "incidents/team.html", context)
