"""The incident page's recurrence panel: similar past incidents, the problem record and the major incident.

An inclusion tag, so that the console's incident view and template change by one include line.
"""

from __future__ import annotations

from typing import Any

from django import template

from incidents import selectors
from incidents.models import Incident, Problem, reference_for

register = template.Library()


@register.inclusion_tag("incidents/_recurrence.html", takes_context=True)
def recurrence_panel(context: dict[str, Any], incident: Incident) -> dict[str, Any]:
    request = context["request"]
    problem = (
        selectors.problems_visible_to(request.user).filter(pk=incident.problem_id).first()
        if incident.problem_id
        else None
    )
    return {
        "incident": incident,
        "similar": selectors.similar_incidents(incident, request.user, limit=5),
        "problem": problem,
        "can_link": not incident.is_final,
        "parent_ref": reference_for(incident.parent_id) or "",
        "is_parent": context.get("children") is not None and bool(context.get("children")),
        "csrf_token": context.get("csrf_token"),
        "problem_states": Problem.State,
    }
