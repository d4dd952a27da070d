"""Browser screens of interviews: the interviewer's console, the candidate's screen, the printable report.

The pages are shells: their data comes from the REST API (`/api/v1/interviews/...`) through small
scripts, so the console, the candidate's screen and any other client see exactly the same rules. The
candidate's page carries only its link's token; everything else comes from `selectors.candidate_view`.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import reports, selectors
from .models import Session


@require_GET
@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    visible = selectors.sessions_visible_to(request.user).order_by("-id")[:100]
    return render(request, "interviews/sessions.html", {"sessions": visible})


@require_GET
@login_required
def console(request: HttpRequest, pk: int) -> HttpResponse:
    session = selectors.sessions_visible_to(request.user).filter(pk=pk).first()
    if session is None:
        raise Http404("No such session.")
    role = selectors.role_in(session, request.user)
    return render(
        request,
        "interviews/console.html",
        {
            "session": session,
            "role": role or "viewer",
            "dimensions": session.case_version.rubric.dimensions.all(),
            "flags": [(v, label) for v, label in session.notes.model.Flag.choices if v],
            "recommendations": Session.Recommendation.choices,
        },
    )


@require_GET
@login_required
def report(request: HttpRequest, pk: int) -> HttpResponse:
    session = selectors.sessions_visible_to(request.user).filter(pk=pk).first()
    if session is None:
        raise Http404("No such session.")
    return render(
        request, "interviews/report.html", {"report": reports.session_report(session, viewer=request.user)}
    )


@require_GET
def candidate(request: HttpRequest, token: str) -> HttpResponse:
    session = selectors.session_by_token(token)
    if session is None:
        raise Http404("No such interview.")
    return render(request, "interviews/candidate.html", {"token": token})
