"""The incident page's recurrence panel: similar past incidents, the problem record and the major incident.

An inclusion tag, so that the console's incident view and template change by one include line.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.cache import cache

from incidents import selectors
from incidents.models import Incident, Problem, reference_for
from incidents.templatetags.desk import reference_url

register = template.Library()


# How long the panel's ranking of similar past incidents is reused. The ranking is a trigram and full-text
# match over every resolved incident of the desk: at 100,000 incidents one common title cost 0.3 s of
# PostgreSQL CPU on every view of the page. A past incident resolved meanwhile joins the panel within this
# time; an edit or a classification of this incident (a new version) ranks again at once.
SIMILAR_CACHE_SECONDS = 300


def similar_for_page(incident: Incident, user: Any, *, limit: int) -> list[Incident]:
    """selectors.similar_incidents, its ranking (ids and scores) reused for SIMILAR_CACHE_SECONDS per incident
    version and reach. Each view reads the ranked incidents again through incidents_handled_by, one query by
    primary key: what the reader may see, and each incident's state, title and cause, are those of now."""
    me = selectors.desk_user(user)
    reach = "all" if me.is_superuser else ",".join(str(pk) for pk in sorted(me.domain_ids))
    key = f"console:similar:{incident.pk}:{incident.version}:{limit}:{reach}"
    ranked: list[tuple[int, float]] | None = cache.get(key)
    if ranked is None:
        found = selectors.similar_incidents(incident, user, limit=limit)
        cache.set(key, [(past.pk, past.similarity) for past in found], SIMILAR_CACHE_SECONDS)  # type: ignore[attr-defined]
        return found
    if not ranked:
        return []
    score = dict(ranked)
    rows = selectors.similar_reread(list(score), user)
    found = sorted(rows, key=lambda past: (-score[past.pk], -past.pk))
    for past in found:
        past.similarity = score[past.pk]  # type: ignore[attr-defined]
    return found


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
        "similar": similar_for_page(incident, request.user, limit=5),
        "problem": problem,
        "can_link": not incident.is_final,
        # Its forms' URLs, reversed once per process (reference_url).
        "problem_url": reference_url("web:incident_problem", incident.reference),
        "parent_url": reference_url("web:incident_parent", incident.reference),
        "parent_ref": reference_for(incident.parent_id) or "",
        "is_parent": context.get("children") is not None and bool(context.get("children")),
        "csrf_token": context.get("csrf_token"),
        "problem_states": Problem.State,
    }
