"""Web pages of problem management (console), the reporter's satisfaction survey and major-incident links.

Kept apart from incidents.views so that the console queue and these pages change independently. Views
parse and authorise; writes go through incidents.problems, incidents.major and incidents.services.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import audit, major, notifications, problems, selectors, services
from .errors import InvalidTransition, StaleVersion
from .forms import FollowUpForm
from .models import PROBLEM_REFERENCE_PREFIX, AuditEvent, FollowUpAction, Incident, Problem
from .permissions import responder_or_404
from .views.common import visible_incident

PROBLEM_PAGE_SIZE = 100


def _problem_list(request: HttpRequest) -> QuerySet[Problem]:
    return (
        selectors.problems_visible_to(request.user)
        .select_related("team", "category", "owner")
        .annotate(
            # Linked incidents the viewer sees (as the API counts them): a hidden one is not even a number.
            incident_count=Count(
                "incidents",
                filter=Q(incidents__in=selectors.incidents_handled_by(request.user).values("pk")),
                distinct=True,
            )
        )
    )


@login_required
def problem_list(request: HttpRequest) -> HttpResponse:
    """Problem records, newest first; `state` filters (open ones by default)."""
    responder_or_404(request)
    state = request.GET.get("state", "active")
    qs = _problem_list(request)
    if state == "active":
        qs = qs.exclude(state=Problem.State.CLOSED)
    elif state in Problem.State.values:
        qs = qs.filter(state=state)
    else:
        state = "all"
    context = {
        "problems": list(qs.order_by("-id")[:PROBLEM_PAGE_SIZE]),
        "state": state,
        "states": Problem.State.choices,
    }
    return render(request, "incidents/problems.html", context)


def _visible_problem(request: HttpRequest, pk: int) -> Problem:
    problem = (
        _problem_list(request)
        .prefetch_related(
            Prefetch(
                "incidents",
                queryset=selectors.incidents_handled_by(request.user)
                .select_related("category", "domain")
                .order_by("-id"),
                to_attr="visible_incidents",
            ),
            Prefetch("follow_ups", queryset=FollowUpAction.objects.select_related("owner")),
        )
        .filter(pk=pk)
        .first()
    )
    if problem is None:
        raise Http404("No such problem.")
    return problem


@login_required
def problem_detail(request: HttpRequest, pk: int) -> HttpResponse:
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    # The page lists the linked incidents' titles: the restricted ones are audited (collected, one INSERT).
    audit.note(request.user, problem.visible_incidents, what=AuditEvent.What.VIEW, detail="GET problem")  # type: ignore[attr-defined]
    return render(
        request,
        "incidents/problem.html",
        {
            "problem": problem,
            "allowed_states": [
                (state, Problem.State(state).label)
                for state in sorted(problems.PROBLEM_TRANSITIONS[problem.state])
            ],
            "follow_up_form": FollowUpForm(),
        },
    )


@login_required
@require_POST
def problem_state(request: HttpRequest, pk: int) -> HttpResponse:
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    version = request.POST.get("version", "")
    try:
        problems.change_state(
            problem,
            actor=request.user,
            state=request.POST.get("state", ""),
            version=int(version) if version.isdigit() else None,
        )
    except (InvalidTransition, StaleVersion, ValidationError) as exc:
        _say_refused(request, exc)
        return redirect("web:problem", pk=pk)
    label = dict(Problem.State.choices).get(request.POST["state"], request.POST["state"])
    messages.success(request, f"{problem.reference} is now {str(label).lower()}.")
    return redirect("web:problem", pk=pk)


@login_required
@require_POST
def follow_up_done(request: HttpRequest, pk: int, follow_up_id: int) -> HttpResponse:
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    follow_up = next((f for f in problem.follow_ups.all() if f.pk == follow_up_id), None)
    if follow_up is None:
        raise Http404("No such follow-up action.")
    problems.complete_follow_up(follow_up, actor=request.user)
    messages.success(request, f"Done: {follow_up.title}.")
    return redirect("web:problem", pk=pk)


@login_required
@require_POST
def incident_parent(request: HttpRequest, reference: str) -> HttpResponse:
    """Link the incident to a major incident by reference (an empty reference unlinks it)."""
    responder_or_404(request)
    visible = selectors.incidents_handled_by(request.user)
    incident = visible.by_reference(reference).first()
    if incident is None:
        raise Http404("No such incident.")
    parent_ref = request.POST.get("parent", "").strip()
    parent = visible.by_reference(parent_ref).first() if parent_ref else None
    if parent_ref and parent is None:
        messages.error(request, f"No incident {parent_ref}.")
        return redirect("web:incident", reference=incident.reference)
    version = request.POST.get("version", "")
    try:
        major.set_parent(
            incident, parent=parent, actor=request.user, version=int(version) if version.isdigit() else None
        )
    except (InvalidTransition, StaleVersion, ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("web:incident", reference=incident.reference)
    messages.success(
        request,
        f"{incident.reference} now follows {parent.reference}." if parent else "Unlinked from its parent.",
    )
    return redirect("web:incident", reference=incident.reference)


def _surveyed(token: str) -> Incident:
    pk = notifications.incident_pk_from_survey_token(token)
    incident = Incident.objects.select_related("rating").filter(pk=pk).first() if pk else None
    if incident is None:
        raise Http404("No such survey.")
    return incident


def survey(request: HttpRequest, token: str) -> HttpResponse:
    """The satisfaction survey behind the signed link of the closing mail.

    GET shows the score clicked in the mail, ready to send with an optional comment: a GET never
    records anything, so mail scanners that open links do not vote. POST records it (the last counts).
    """
    incident = _surveyed(token)
    rating = getattr(incident, "rating", None)
    if request.method == "POST":
        score = request.POST.get("score", "")
        try:
            if score not in {"1", "2", "3", "4", "5"}:  # not isdigit(): "²" is a digit int() refuses
                raise ValidationError({"score": ["Rate from 1 (poor) to 5 (excellent)."]})
            services.rate_incident(incident, score=int(score), comment=request.POST.get("comment", ""))
        except InvalidTransition:
            return _survey_page(request, incident, rating, "Only a closed incident can be rated.", 409)
        except ValidationError as exc:
            return _survey_page(request, incident, rating, " ".join(exc.messages), 400)
        return _survey_page(request, incident, None, "", 200, thanks=True)
    return _survey_page(request, incident, rating, "", 200)


def _survey_page(
    request: HttpRequest, incident: Incident, rating: object, error: str, status: int, *, thanks: bool = False
) -> HttpResponse:
    chosen = request.POST.get("score") or request.GET.get("score") or (getattr(rating, "score", "") or "")
    context = {
        "incident": incident,
        "chosen": str(chosen),
        "comment": request.POST.get("comment", getattr(rating, "comment", "")),
        "error": error,
        "thanks": thanks,
        "scores": ["1", "2", "3", "4", "5"],
    }
    return render(request, "incidents/survey.html", context, status=status)


# --- problems from the console: create from an incident, link and unlink, follow-ups ------------------


def _problem_by_reference(request: HttpRequest, reference: str) -> Problem | None:
    """A visible problem by "PRB-000012" or "12"; None otherwise (never revealing one that is hidden)."""
    raw = reference.strip().upper().removeprefix(PROBLEM_REFERENCE_PREFIX)
    if not raw.isdigit() or len(raw) > 12:
        return None
    return selectors.problems_visible_to(request.user).filter(pk=int(raw)).first()


def _say_refused(request: HttpRequest, exc: Exception) -> None:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, texts in exc.message_dict.items():
            messages.error(request, f"{field}: {' '.join(texts)}")
        return
    messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))


@login_required
@require_POST
def incident_problem(request: HttpRequest, reference: str) -> HttpResponse:
    """From the incident page: create a problem from it (`create`), link it to one (`link`) or unlink it."""
    responder_or_404(request)
    incident = visible_incident(request, reference)
    what = request.POST.get("what", "")
    back = redirect("web:incident", reference=incident.reference)
    try:
        if what == "create":
            problem = problems.create_problem(
                actor=request.user,
                title=request.POST.get("title", "")[:200],
                description=f"Opened from {incident.reference}.",
                team=incident.team,
                owner=request.user,
                category=incident.category,
                incidents=[incident],
            )
            messages.success(request, f"Opened {problem.reference} from {incident.reference}.")
            return redirect("web:problem", pk=problem.pk)
        if what == "link":
            found = _problem_by_reference(request, request.POST.get("problem", ""))
            if found is None:
                messages.error(request, f"problem: no problem {request.POST.get('problem', '')!r}.")
                return back
            problems.link_incidents(found, actor=request.user, incidents=[incident])
            messages.success(request, f"{incident.reference} is linked to {found.reference}.")
            return back
        if what == "unlink" and incident.problem_id:
            found = selectors.problems_visible_to(request.user).filter(pk=incident.problem_id).first()
            if found is not None:
                problems.unlink_incidents(found, actor=request.user, incidents=[incident])
                messages.success(request, f"{incident.reference} is no longer linked to {found.reference}.")
            return back
    except (InvalidTransition, StaleVersion, ValidationError, PermissionDenied) as exc:
        _say_refused(request, exc)
        return back
    messages.error(request, "what: choose create, link or unlink.")
    return back


@login_required
@require_POST
def problem_incidents(request: HttpRequest, pk: int) -> HttpResponse:
    """From the problem page: link an incident by its reference, or unlink one."""
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    ref = request.POST.get("incident", "").strip().upper()
    incident = selectors.incidents_visible_to(request.user).by_reference(ref).first()
    if incident is None:
        messages.error(request, f"incident: no incident {ref!r}.")
        return redirect("web:problem", pk=pk)
    try:
        if request.POST.get("what") == "unlink":
            problems.unlink_incidents(problem, actor=request.user, incidents=[incident])
            messages.success(request, f"{incident.reference} is no longer linked to {problem.reference}.")
        else:
            problems.link_incidents(problem, actor=request.user, incidents=[incident])
            messages.success(request, f"{incident.reference} is linked to {problem.reference}.")
    except (InvalidTransition, StaleVersion, ValidationError, PermissionDenied) as exc:
        _say_refused(request, exc)
    return redirect("web:problem", pk=pk)


@login_required
@require_POST
def problem_follow_up(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a follow-up action: a title, an owner among the responders and a due date."""
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
        return redirect("web:problem", pk=pk)
    try:
        action = problems.add_follow_up(problem, actor=request.user, **form.cleaned_data)
    except (InvalidTransition, ValidationError, PermissionDenied) as exc:
        _say_refused(request, exc)
        return redirect("web:problem", pk=pk)
    messages.success(request, f"Follow-up added: {action.title}, due {action.due_date:%-d %b %Y}.")
    return redirect("web:problem", pk=pk)


@login_required
@require_POST
def problem_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Record what is known: the root cause and the workaround (needed to resolve or mark a known error)."""
    responder_or_404(request)
    problem = _visible_problem(request, pk)
    version = request.POST.get("version", "")
    changes = {
        field: request.POST[field][:100_000]
        for field in ("root_cause", "workaround")
        if field in request.POST
    }
    try:
        problems.edit_problem(
            problem, actor=request.user, version=int(version) if version.isdigit() else None, **changes
        )
    except (InvalidTransition, StaleVersion, ValidationError, PermissionDenied) as exc:
        _say_refused(request, exc)
        return redirect("web:problem", pk=pk)
    messages.success(request, f"{problem.reference}: saved.")
    return redirect("web:problem", pk=pk)
