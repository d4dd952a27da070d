"""Browser screens of interviews: the interviewer's console, the candidate's screen, the printable report.

The pages are shells: their data comes from the REST API (`/api/v1/interviews/...`) through small
scripts, so the console, the candidate's screen and any other client see exactly the same rules. The
candidate's page carries only its link's token; everything else comes from `selectors.candidate_view`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from incidents.models import Incident
from incidents.selectors import incidents_handled_by

from . import calibration, cases, charts, reports, selectors, services, wizard
from .lifecycle import InvalidSessionTransition
from .models import CaseVersion, Session


@require_GET
@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    """The landing page of interviews, by role: a manager sees every session and the library's links, an
    interviewer the panels they lead, a rater the sessions waiting for their rating."""
    visible = selectors.sessions_visible_to(request.user).order_by("-id")[:100]
    role = selectors.interview_role(request.user)
    to_rate = []
    if role == "rater":
        to_rate = list(
            selectors.sessions_visible_to(request.user)
            .filter(
                state__in=[Session.State.EVALUATE, Session.State.RATING],
                members__user_id=int(request.user.pk or 0),
            )
            .order_by("-id")[:100]
        )
    return render(
        request, "interviews/sessions.html", {"sessions": visible, "role": role, "to_rate": to_rate}
    )


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
            # A closed or void session is a record: nothing on its console can be changed any more.
            "read_only": session.state in (Session.State.CLOSED, Session.State.VOID),
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


# --------------------------------------------------------------------------------------------------
# A case from a closed incident, and the draft case page
# --------------------------------------------------------------------------------------------------


def _messages_of(error: ValidationError | PermissionDenied | InvalidSessionTransition) -> list[str]:
    if isinstance(error, ValidationError) and hasattr(error, "message_dict"):
        return [f"{field}: {m}" for field, ms in error.message_dict.items() for m in ms]
    if isinstance(error, ValidationError):
        return list(error.messages)
    return [str(error)]


def _closed_incident_for_author(request: HttpRequest, reference: str) -> Incident:
    """The incident, if the user may draft cases and see it; 404 otherwise, never revealing it exists."""
    if not request.user.has_perm("interviews.change_caseversion"):
        raise Http404("No such incident.")
    incident = (
        incidents_handled_by(request.user).by_reference(reference).select_related("domain", "team").first()
    )
    if incident is None:
        raise Http404("No such incident.")
    return incident


@login_required
@require_http_methods(["GET", "POST"])
def from_incident(request: HttpRequest, reference: str) -> HttpResponse:
    """The wizard: a preview of the pseudonymised draft (GET), then the draft itself (POST).

    Posting twice drafts two cases, as the API does: the author may draft again after the record improved.
    """
    incident = _closed_incident_for_author(request, reference)
    context: dict[str, object] = {"incident": incident}
    try:
        if request.method == "POST":
            version, findings = wizard.draft_case_from_incident(incident, actor=request.user)
            messages.success(
                request,
                f"Drafted {version}. "
                + (f"The detectors still find {len(findings)} item(s)." if findings else "")
                + " Complete it, submit it for review; a second person approves it.",
            )
            return redirect("interviews:case", slug=version.case.slug)
        context["preview"] = wizard.preview_case_from_incident(incident, actor=request.user)
    except (ValidationError, PermissionDenied) as error:
        context["errors"] = _messages_of(error)
        return render(request, "interviews/from_incident.html", context, status=409)
    context["conflicts"] = services.candidates_who_worked(incident)
    return render(request, "interviews/from_incident.html", context)


def _latest_version(request: HttpRequest, slug: str) -> CaseVersion:
    version = (
        selectors.case_versions_visible_to(request.user).filter(case__slug=slug).order_by("-number").first()
    )
    if version is None:
        raise Http404("No such case.")
    return version


@require_GET
@login_required
def case_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A case's latest version: its status, what still blocks publication, and the review actions."""
    version = _latest_version(request, slug)
    sees_source = selectors.sees_source_incident(version, request.user)
    conflicts = services.candidates_who_worked(version.source_incident) if sees_source else []
    findings = list(version.findings.select_related("decided_by"))
    used = cases.used_text(version) if findings else ""
    return render(
        request,
        "interviews/case.html",
        {
            "version": version,
            "problems": cases.publication_problems(version),
            "facts": version.facts.all(),
            "expected": version.problems.all(),
            "solutions": version.solutions.all(),
            "actions": cases.case_actions(version),
            "conflicts": conflicts,
            "sees_source": sees_source,
            "findings": [
                (f, cases.suggested_replacement(f, used=used) if f.status == f.Status.OPEN else "")
                for f in findings
            ],
            "may_decide": request.user.has_perm("interviews.publish_caseversion")
            and version.status in ("draft", "review")
            and not version.is_frozen,
        },
    )


@require_POST
@login_required
def case_finding(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Accept or replace one finding of the latest version; refusals are shown as messages."""
    version = _latest_version(request, slug)
    finding = version.findings.filter(pk=pk).first()
    if finding is None:
        raise Http404("No such finding.")
    decision = request.POST.get("decision", "")
    replacement = request.POST.get("replacement")
    try:
        if not request.user.has_perm("interviews.publish_caseversion"):
            raise PermissionDenied("You need the permission interviews.publish_caseversion.")
        finding = cases.decide_finding(
            finding,
            actor=request.user,
            decision=decision,
            replacement=replacement if decision == "replace" and replacement else None,
        )
        messages.success(
            request,
            f"Finding #{finding.pk} "
            + (f"replaced by {finding.replacement!r}." if finding.replacement else "accepted."),
        )
    except (ValidationError, PermissionDenied, InvalidSessionTransition) as error:
        for message in _messages_of(error):
            messages.error(request, message)
    return redirect("interviews:case", slug=slug)


@require_POST
@login_required
def case_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """Submit, return, approve or retire the latest version; refusals are shown as messages."""
    version = _latest_version(request, slug)
    if action not in cases.CASE_ACTIONS:
        raise Http404("No such action.")
    perm = "publish_caseversion" if action in ("approve", "retire") else "change_caseversion"
    try:
        if not request.user.has_perm(f"interviews.{perm}"):
            raise PermissionDenied(f"You need the permission interviews.{perm}.")
        version = cases.CASE_ACTIONS[cases.CaseAction(action)](version, actor=request.user)
        messages.success(request, f"{version} is now {version.get_status_display().lower()}.")
    except (ValidationError, PermissionDenied, InvalidSessionTransition) as error:
        for message in _messages_of(error):
            messages.error(request, message)
    return redirect("interviews:case", slug=slug)


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------


@require_GET
@login_required
def calibration_list(request: HttpRequest) -> HttpResponse:
    if not selectors.can_use_library(request.user):
        raise Http404("No such page.")
    sessions = calibration.reference_sessions_for(request.user)[:100]
    return render(request, "interviews/calibration_list.html", {"sessions": sessions})


@login_required
@require_http_methods(["GET", "POST"])
def calibration_session(request: HttpRequest, pk: int) -> HttpResponse:
    """Rate a reference session one dimension at a time; the reference shows once all are rated."""
    session = calibration.reference_sessions_for(request.user).filter(pk=pk).first()
    if session is None:
        raise Http404("No such reference session.")
    errors: list[str] = []
    if request.method == "POST":
        level = request.POST.get("level", "")
        try:
            services.rate_for_calibration(
                session,
                rater=request.user,
                dimension=request.POST.get("dimension", "")[:60],
                level=int(level) if level.isdigit() else 0,
                evidence=request.POST.get("evidence", "")[:20_000],
            )
        except (ValidationError, PermissionDenied) as error:
            errors = _messages_of(error)
        else:
            return redirect("interviews:calibration_session", pk=session.pk)
    return render(
        request,
        "interviews/calibration.html",
        {
            "session": session,
            "material": calibration.material(session),
            "result": calibration.result(session, request.user),
            "errors": errors,
            "levels": [1, 2, 3, 4, 5],
        },
        status=400 if errors else 200,
    )


# --------------------------------------------------------------------------------------------------
# Report charts (each chart with its table)
# --------------------------------------------------------------------------------------------------


def _require_reports(request: HttpRequest) -> None:
    """Reports are for library users who may see every session; to anyone else they do not exist."""
    if not (selectors.can_use_library(request.user) and request.user.has_perm("interviews.view_session")):
        raise Http404("No such page.")


def _report_version(request: HttpRequest, slug: str, number: int) -> CaseVersion:
    _require_reports(request)
    version = selectors.case_versions_visible_to(request.user).filter(case__slug=slug, number=number).first()
    if version is None:
        raise Http404("No such case version.")
    return version


@require_GET
@login_required
def reports_index(request: HttpRequest) -> HttpResponse:
    _require_reports(request)
    versions = (
        selectors.case_versions_visible_to(request.user)
        .annotate(closed=Count("sessions", filter=Q(sessions__state=Session.State.CLOSED)))
        .order_by("case__slug", "-number")
    )
    return render(request, "interviews/reports_index.html", {"versions": versions})


@require_GET
@login_required
def comparison_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Candidates of one case version side by side, with percentiles among its sessions."""
    version = _report_version(request, slug, number)
    rows = reports.comparison(version)
    return render(
        request,
        "interviews/chart_comparison.html",
        {"version": version, "rows": rows, "chart": charts.comparison(rows)},
    )


@require_GET
@login_required
def case_analytics_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """How often and how fast each fact is found, which problems separate candidates, phase overruns."""
    version = _report_version(request, slug, number)
    analytics = reports.case_analytics(version)
    return render(
        request,
        "interviews/chart_case.html",
        {
            "version": version,
            "analytics": analytics,
            "facts_chart": charts.fact_discovery(analytics),
            "problems_chart": charts.separating_problems(analytics),
            "phases_chart": charts.phase_overruns(analytics),
        },
    )


@require_GET
@login_required
def rater_analytics_page(request: HttpRequest) -> HttpResponse:
    """Agreement per dimension over time, leniency per rater, and calibration results."""
    _require_reports(request)
    by = request.GET.get("by", "month")
    if by not in ("month", "quarter", "all"):
        by = "month"
    analytics = reports.rater_analytics(by=by)
    return render(
        request,
        "interviews/chart_raters.html",
        {
            "analytics": analytics,
            "by": by,
            "agreement_chart": charts.agreement_over_time(analytics),
            "leniency_chart": charts.leniency(analytics),
        },
    )
