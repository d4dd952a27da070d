"""The responders' incident page: actions, edits, comments, attachments and the Markdown preview."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods, require_POST

from .. import lifecycle, selectors, services
from ..errors import InvalidTransition, StaleVersion
from ..forms import ACTION_FORMS, AttachForm, CommentForm, EditForm, FileReportForm
from ..markup import render_markdown
from ..models import Attachment, Incident, TimelineEntry
from ..permissions import responder_or_404
from ..selectors import desk_user
from ..templatetags.desk import action_label, field_html, reference_url
from ..templatetags.timeline_words import Names, describe
from .common import actor_label, apply_errors, file_response, form_label, visible_incident

# impact-urgency -> priority, for the classify form's preview (lifecycle.PRIORITY_MATRIX).
PRIORITY_MATRIX_JSON = json.dumps({f"{i}-{u}": p for (i, u), p in lifecycle.PRIORITY_MATRIX.items()})


@dataclass
class ConsoleEntry:
    """One timeline entry as the page shows it: everything the template would compute per entry (its
    sentence, its times, its file's link) computed here once, in Python (a filter or a tag per entry was a
    third of the page's rendering at 30 entries)."""

    entry: TimelineEntry
    who: str
    text: SafeString
    at_iso: str
    at_text: str
    download_url: str = ""


# The unbound comment and attach forms' fields as field_html writes them, per language: the same HTML on every
# page (no value, no error, fixed ids), and their widgets' templates were a tenth of the page's CPU.
_UNBOUND_FIELDS: dict[tuple[str, str], SafeString] = {}


def _fields_html(form: Any, names: tuple[str, ...]) -> SafeString:
    """`{% field_html %}` of each named field of `form` (a form, or a form class for its unbound form);
    rendered once per process for an unbound form, which is then not even built."""
    built = not isinstance(form, type)
    key = (f"{(type(form) if built else form).__name__}:{','.join(names)}", get_language() or "")
    if not (built and form.is_bound) and key in _UNBOUND_FIELDS:
        return _UNBOUND_FIELDS[key]
    if not built:
        form = form()
    # Joined as the template's lines were.
    html = SafeString("\n          ".join(field_html(form[name]) for name in names))
    if not form.is_bound:
        _UNBOUND_FIELDS[key] = html
    return html


# The `date` filter's "M" (Jan ... Dec) per language: read once per process, not translated again per page.
_MONTHS: dict[str, list[str]] = {}


def _month_names() -> list[str]:
    """The `date` filter's "M" (Jan ... Dec, in the active language)."""
    language = get_language() or ""
    months = _MONTHS.get(language)
    if months is None:
        if len(_MONTHS) > 100:  # a bound: there are few languages
            _MONTHS.clear()
        months = _MONTHS[language] = ["", *(str(MONTHS_3[month]).title() for month in range(1, 13))]
    return months


def _console_entry(
    entry: TimelineEntry, who: str, names: Names, months: list[str], files_url: str
) -> ConsoleEntry:
    at = timezone.localtime(entry.at)
    comment = entry.kind == TimelineEntry.Kind.COMMENT and entry.comment is not None
    attachment = entry.kind == TimelineEntry.Kind.ATTACHMENT
    return ConsoleEntry(
        entry,
        who,
        # A comment or a file shows its own markup, not the sentence (nor its words' translations).
        SafeString("") if comment or attachment else describe(entry, names),
        # As the template's date filters wrote them: "c" and "j M Y, H:i" in the desk's time zone.
        at.isoformat(),
        f"{at.day} {months[at.month]} {at.year}, {at:%H:%M}",
        f"{files_url}{entry.attachment.pk}/" if attachment and entry.attachment is not None else "",
    )


def render_incident(
    request: HttpRequest,
    incident: Incident,
    *,
    status: int = 200,
    error: str = "",
    conflict: str = "",
    bound: dict[str, Any] | None = None,
) -> HttpResponse:
    """The incident page, with `bound` forms (by name) showing their errors and `error` or `conflict` in
    the banner. Other apps' console views (escalation's report filing) answer with it too."""
    me = desk_user(request.user)
    bound = bound or {}
    allowed = lifecycle.allowed_actions(incident, request.user)
    # Only the open form is built here (one sent back with its errors, or one opened without JavaScript); the
    # others are fetched when opened (action_form): building and rendering every select of every action was
    # most of the page's CPU.
    # The page's URLs reversed once per process (reference_url; a {% url %} per action and per form was a tenth
    # of the page's CPU), the actions' from the page's.
    page_url = reference_url("web:incident", incident.reference)
    urls = {
        name: reference_url(f"web:incident_{name}", incident.reference)
        for name in ("edit", "comment", "attach")
    }
    urls.update(queue=reference_url("web:queue"), preview=reference_url("web:markdown_preview"))
    action_forms = [(name, bound.get(name), f"{page_url}{name}/", action_label(name)) for name in allowed]
    targets = selectors.reporting_targets(incident, clocks=selectors.sla_clocks(incident))
    unfiled = (
        selectors.unfiled_targets(incident, targets=targets)
        if targets and me.may_file_reports(incident)
        else []
    )
    rows = selectors.timeline_rows(incident, request.user)
    for entry in rows:
        # What this reader may see of the data (a confidential reporter's address is not theirs to read);
        # in memory only: the entry itself is append-only.
        entry.data = selectors.entry_data(entry, incident, request.user)
    names = Names.for_entries(rows, incident, reporter_visible=me.can_see_reporter(incident))
    months, files_url = _month_names(), f"{page_url}files/"
    urls["files"] = files_url
    entries = [
        _console_entry(entry, actor_label(entry, incident, me), names, months, files_url) for entry in rows
    ]
    context = {
        "incident": incident,
        "page_url": page_url,
        "urls": urls,
        "allowed": allowed,
        "action_forms": action_forms,
        "open_action": next(iter(bound), ""),
        "entries": entries,
        "children": selectors.child_incidents(incident, request.user),
        "parent_ref": incident.parent.reference if incident.parent_id else "",  # type: ignore[union-attr]
        "attachments": selectors.attachments_of(incident),
        "reporter_visible": me.can_see_reporter(incident),
        "targets": targets,
        "filings": list(incident.report_filings.select_related("filed_by")) if targets else [],
        # The report filing form (POSTed to escalation's view): for those who may file, while a target is open.
        "file_report_form": bound.get("file_report")
        or (FileReportForm(targets=unfiled, prefix="file_report") if unfiled else None),
        "sla": selectors.sla_status(incident),
        "comment_fields": _fields_html(bound.get("comment") or CommentForm, ("body", "public")),
        "attach_fields": _fields_html(bound.get("attach") or AttachForm, ("file", "public")),
        "edit_form": bound.get("edit"),
        "error": error,
        "conflict": conflict,
        # "you sent version 1, it is now at version 2": the one detail the banner adds to its own words.
        "conflict_versions": (
            found.group(1) if (found := re.search(r"\((you sent [^)]*)\)", conflict)) else ""
        ),
        "priority_matrix": PRIORITY_MATRIX_JSON,
    }
    return render(request, "incidents/incident.html", context, status=status)


def _page_version(request: HttpRequest, incident: Incident) -> int:
    """The version the page showed (`?version=`), so that a form opened later still answers 409 when the
    incident changed after the page was loaded."""
    sent = request.GET.get("version", "")
    return int(sent) if sent.isdigit() and len(sent) < 10 else incident.version


def _open_form(request: HttpRequest, incident: Incident, name: str, form: Any) -> HttpResponse:
    """One form of the incident page, opened: its fragment for htmx (the page fetches it when the form is
    opened), else the whole page with that form open (without JavaScript, the summary's link leads here)."""
    if not request.htmx:  # type: ignore[attr-defined]
        return render_incident(request, incident, bound={name: form})
    if name == "edit":
        return render(request, "incidents/_edit_form.html", {"incident": incident, "edit_form": form})
    context = {"incident": incident, "name": name, "form": form, "priority_matrix": PRIORITY_MATRIX_JSON}
    return render(request, "incidents/_action_form.html", context)


def _action_initial(incident: Incident, action: str) -> dict[str, Any]:
    initial: dict[str, Any] = {"version": incident.version}
    if action == "classify":
        initial.update(
            domain=incident.domain_id,
            category=incident.category_id,
            impact=incident.impact,
            urgency=incident.urgency,
            team=incident.team_id or (incident.category.default_team_id if incident.category else None),
            assignee=incident.assignee_id,
            outcome=incident.outcome,
            harm_level=incident.harm_level,
        )
    return initial


@login_required
def incident_detail(request: HttpRequest, reference: str) -> HttpResponse:
    responder_or_404(request)
    incident = visible_incident(request, reference)
    return render_incident(request, incident)


# What the banner says after an action: "INC-000043: resolved.", not "Resolve done."
DONE_WORDS = {
    "classify": "classified",
    "acknowledge": "acknowledged, you are working on it",
    "escalate": "escalated",
    "hold": "put on hold",
    "resume": "resumed",
    "resolve": "resolved; the reporter is asked to confirm",
    "reopen": "reopened",
    "close": "closed",
    "cancel": "cancelled",
    "assign": "assigned",
}


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def incident_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    """Run one lifecycle action with its form's inputs; refusals are shown as the API words them. GET opens
    the action's form, when the role and the transition table allow the action now."""
    responder_or_404(request)
    incident = visible_incident(request, reference)
    if action not in ACTION_FORMS:
        raise Http404("No such action.")
    if request.method != "POST":
        allowed = lifecycle.allowed_actions(incident, request.user)
        if action not in allowed:
            refused = str(InvalidTransition(incident, action, allowed))
            if request.htmx:  # type: ignore[attr-defined]
                return render(
                    request, "incidents/_action_refused.html", {"incident": incident, "error": refused}
                )
            return render_incident(request, incident, status=409, error=refused)
        initial = {**_action_initial(incident, action), "version": _page_version(request, incident)}
        return _open_form(request, incident, action, ACTION_FORMS[action](initial=initial, prefix=action))
    form = ACTION_FORMS[action](request.POST, prefix=action)
    if not form.is_valid():
        return render_incident(request, incident, status=400, bound={action: form})
    kwargs = form.domain_kwargs()
    if action == "cancel" and form.cleaned_data.get("duplicate_of"):
        survivor = (
            selectors.incidents_handled_by(request.user)
            .by_reference(form.cleaned_data["duplicate_of"])
            .first()
        )
        if survivor is None:
            form.add_error("duplicate_of", f"No incident {form.cleaned_data['duplicate_of']}.")
            return render_incident(request, incident, status=400, bound={action: form})
        kwargs["duplicate_of"] = survivor
    try:
        lifecycle.ACTIONS[lifecycle.Action(action)](incident, actor=request.user, **kwargs)
    except StaleVersion as exc:
        return render_incident(request, visible_incident(request, reference), status=409, conflict=str(exc))
    except InvalidTransition as exc:
        return render_incident(request, visible_incident(request, reference), status=409, error=str(exc))
    except PermissionDenied as exc:
        return render_incident(request, incident, status=403, error=str(exc))
    except ValidationError as exc:
        apply_errors(form, exc)
        return render_incident(request, incident, status=400, bound={action: form})
    messages.success(request, f"{reference}: {DONE_WORDS.get(action, form_label(action) + ' done')}.")
    return redirect("web:incident", reference=incident.reference)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def incident_edit(request: HttpRequest, reference: str) -> HttpResponse:
    """Save the edit form; GET opens it (while the incident is not final)."""
    responder_or_404(request)
    incident = visible_incident(request, reference)
    if request.method != "POST":
        if incident.is_final:
            return redirect("web:incident", reference=reference)
        initial = {
            "version": _page_version(request, incident),
            "title": incident.title,
            "description": incident.description,
            "impact": incident.impact,
            "urgency": incident.urgency,
            "outcome": incident.outcome,
        }
        return _open_form(request, incident, "edit", EditForm(initial=initial))
    form = EditForm(request.POST)
    if not form.is_valid():
        return render_incident(request, incident, status=400, bound={"edit": form})
    data = dict(form.cleaned_data)
    version = data.pop("version")
    try:
        services.edit_incident(incident, actor=request.user, version=version, **data)
    except StaleVersion as exc:
        return render_incident(request, visible_incident(request, reference), status=409, conflict=str(exc))
    except InvalidTransition as exc:
        return render_incident(request, incident, status=409, error=str(exc))
    except ValidationError as exc:
        apply_errors(form, exc)
        return render_incident(request, incident, status=400, bound={"edit": form})
    messages.success(request, f"{reference}: saved.")
    return redirect("web:incident", reference=reference)


@login_required
@require_POST
def incident_comment(request: HttpRequest, reference: str) -> HttpResponse:
    responder_or_404(request)
    incident = visible_incident(request, reference)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return render_incident(request, incident, status=400, bound={"comment": form})
    try:
        services.add_comment(
            incident, author=request.user, body=form.cleaned_data["body"], public=form.cleaned_data["public"]
        )
    except InvalidTransition as exc:
        return render_incident(request, incident, status=409, error=str(exc))
    kind = "Public reply" if form.cleaned_data["public"] else "Internal note"
    messages.success(request, f"{kind} added.")
    return redirect(reverse("web:incident", args=[reference]) + "#timeline")


@login_required
@require_POST
def incident_attach(request: HttpRequest, reference: str) -> HttpResponse:
    responder_or_404(request)
    incident = visible_incident(request, reference)
    form = AttachForm(request.POST, request.FILES)
    if not form.is_valid():
        return render_incident(request, incident, status=400, bound={"attach": form})
    try:
        services.add_attachment(
            incident,
            uploaded_by=request.user,
            upload=form.cleaned_data["file"],
            public=form.cleaned_data["public"],
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return render_incident(request, incident, status=400, bound={"attach": form})
    except InvalidTransition as exc:
        return render_incident(request, incident, status=409, error=str(exc))
    messages.success(request, "File attached.")
    return redirect("web:incident", reference=reference)


@login_required
def incident_download(request: HttpRequest, reference: str, attachment_id: int) -> FileResponse:
    responder_or_404(request)
    incident = visible_incident(request, reference)
    return file_response(get_object_or_404(Attachment, pk=attachment_id, incident=incident))


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """What a comment will look like: the same renderer and sanitiser as the stored comment."""
    body = request.POST.get("body", "")[:50_000]
    return render(request, "incidents/_preview.html", {"html": render_markdown(body) if body.strip() else ""})
