"""Calibration: raters score recorded reference sessions and see how far they are from the reference.

A reference session is a closed session marked `is_reference`; its consensus ratings are the reference.
Any user of the case library may calibrate on it, except its own panel (they know the answer).

The reference stays hidden until the rater has rated every dimension of the session, as in a real
session's blind rating: seeing the reference for one dimension would anchor the next. Then each
dimension shows the rater's level, the reference level and the deviation (rater minus reference), with
the mean absolute deviation and the bias (mean signed deviation: positive is lenient).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from . import reports, selectors
from .models import CalibrationRating, ConsensusRating, RubricDimension, Session, SessionMember


def reference_sessions_for(user: Any) -> QuerySet[Session]:
    """Closed reference sessions the user may calibrate on: library users, never the session's own panel."""
    if not selectors.can_use_library(user):
        return Session.objects.none()
    on_panel = SessionMember.objects.filter(session=OuterRef("pk"), user_id=user.pk)
    return (
        Session.objects.filter(is_reference=True, state=Session.State.CLOSED)
        .exclude(Exists(on_panel))
        .select_related("case_version__case", "case_version__rubric")
        .order_by("-closed_at", "-id")
    )


def material(session: Session) -> dict[str, Any]:
    """What a calibrating rater reads: the case and what the candidate did. No panel note, rating,
    evidence, consensus, recommendation or summary: those would give the reference away."""
    version = session.case_version
    return {
        "session": session.pk,
        "case": version.case.slug,
        "version": version.number,
        "title": version.title,
        "presentation": version.presentation,
        "timeline": [
            {k: v for k, v in item.items() if k != "at"} for item in reports.session_timeline(session)
        ],
        "problems": [
            {"statement": p.statement, "late": p.late}
            for p in session.candidate_problems.order_by("stated_at", "id")
        ],
        "solutions": [
            {"rank": s.rank, "action": s.action, "reason": s.reason}
            for s in session.candidate_solutions.order_by("rank", "id")
        ],
    }


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def result(session: Session, rater: Any) -> dict[str, Any]:
    """The rater's calibration ratings on the session, and, once every dimension is rated, the
    reference level and the deviation of each. Three queries whatever the rubric's size."""
    dimensions = list(RubricDimension.objects.filter(rubric_id=session.case_version.rubric_id))
    mine = {c.dimension_id: c for c in CalibrationRating.objects.filter(session=session, rater_id=rater.pk)}
    complete = bool(dimensions) and all(d.pk in mine for d in dimensions)
    reference = (
        dict(ConsensusRating.objects.filter(session=session).values_list("dimension_id", "level"))
        if complete
        else {}
    )
    rows = []
    for d in dimensions:
        own = mine.get(d.pk)
        ref = reference.get(d.pk)
        rows.append(
            {
                "dimension": d.key,
                "name": d.name,
                "anchors": d.anchors,
                "level": own.level if own else None,
                "evidence": own.evidence if own else "",
                "reference": ref,
                "deviation": own.level - ref if own and ref is not None else None,
            }
        )
    deviations = [r["deviation"] for r in rows if r["deviation"] is not None]
    return {
        "session": session.pk,
        "rated": len(mine),
        "dimensions_total": len(dimensions),
        "complete": complete,
        "dimensions": rows,
        "mean_absolute_deviation": _mean([abs(x) for x in deviations]),
        "bias": _mean(deviations),
    }
