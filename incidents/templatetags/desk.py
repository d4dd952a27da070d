"""Badges and plain-language labels shared by the console and the reporter portal."""

from __future__ import annotations

import functools
import html
import re
from typing import Any, NamedTuple
from urllib.parse import urlencode

from django import template
from django.core.signals import setting_changed
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from incidents.models import REFERENCE_RE, Incident
from incidents.selectors import desk_user

register = template.Library()
S = Incident.State

# Bootstrap colour per state: open work is blue/orange, waiting is grey, done is green, dropped is dark.
STATE_STYLE: dict[str, str] = {
    S.RECEIVED: "text-bg-info",
    S.CLASSIFIED: "text-bg-primary",
    S.RESPONDING: "text-bg-warning",
    S.ESCALATED: "text-bg-danger",
    S.ON_HOLD: "text-bg-secondary",
    S.RESOLVED: "text-bg-success",
    S.CLOSED: "text-bg-dark",
    S.CANCELLED: "text-bg-light border",
}
# What a reporter reads: where their incident is, in words, not workflow jargon.
PLAIN_STATE: dict[str, str] = {
    S.RECEIVED: "We have your report",
    S.CLASSIFIED: "Assigned to a team",
    S.RESPONDING: "Someone is working on it",
    S.ESCALATED: "Passed to specialists",
    S.ON_HOLD: "Waiting for information",
    S.RESOLVED: "Fixed - please confirm",
    S.CLOSED: "Closed",
    S.CANCELLED: "Cancelled",
}
PRIORITY_STYLE = {1: "prio-1", 2: "prio-2", 3: "prio-3", 4: "prio-4", 5: "prio-5"}
ACTION_LABELS = {
    "classify": "Classify",
    "acknowledge": "Acknowledge",
    "escalate": "Escalate",
    "hold": "Put on hold",
    "resume": "Resume",
    "resolve": "Resolve",
    "reopen": "Reopen",
    "close": "Close",
    "cancel": "Cancel incident",
    "assign": "Assign",
}


@register.simple_tag
def state_badge(state: str) -> str:
    label = S(state).label if state in S.values else state
    return format_html(
        '<span class="badge state-badge {}" data-state="{}">{}</span>',
        STATE_STYLE.get(state, ""),
        state,
        label,
    )


@register.simple_tag
def plain_state_badge(state: str) -> str:
    return format_html(
        '<span class="badge state-badge {}" data-state="{}">{}</span>',
        STATE_STYLE.get(state, ""),
        state,
        PLAIN_STATE.get(state, state),
    )


@register.filter
def plain_state(state: str) -> str:
    return PLAIN_STATE.get(state, state)


@register.simple_tag
def priority_badge(priority: int | None) -> str:
    if not priority:
        return format_html(
            '<span class="badge prio-none" title="{}">{}</span>', "Not prioritised yet", "No priority"
        )
    return format_html(
        '<span class="badge {}" title="Priority {}">P{}</span>', PRIORITY_STYLE[priority], priority, priority
    )


@register.filter
def display(obj: Any, name: str) -> Any:
    """`obj.get_<name>_display()`, from a dict of the field's choices made once: Django's method hashes every
    (lazy) choice label on each call, which was a fifth of the incident page's similar-incidents panel."""
    key = (obj._meta.label, name)
    labels = _CHOICE_LABELS.get(key)
    if labels is None:
        labels = _CHOICE_LABELS[key] = dict(obj._meta.get_field(name).flatchoices)
    value = getattr(obj, name)
    return labels.get(value, value)


_CHOICE_LABELS: dict[tuple[str, str], dict[Any, Any]] = {}


@register.filter
def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action.replace("_", " ").capitalize())


AGE_BUCKET_LABELS = {
    "under_1d": "Under 1 day",
    "1d_3d": "1 to 3 days",
    "3d_7d": "3 to 7 days",
    "7d_30d": "7 to 30 days",
    "over_30d": "Over 30 days",
}


@register.filter
def age_bucket_label(key: str) -> str:
    """A backlog age bucket in words ("under_1d" -> "Under 1 day")."""
    return AGE_BUCKET_LABELS.get(key, str(key).replace("_", " "))


@register.filter
def state_label(state: str) -> str:
    """A state's label ("on_hold" -> "On hold")."""
    return str(S(state).label) if state in S.values else str(state).replace("_", " ")


@register.filter
def domain_name(slug: str, domains: Any) -> str:
    """A domain's name from a list already on the page (objects or dicts with slug and name)."""
    for d in domains or ():
        d_slug = d["slug"] if isinstance(d, dict) else getattr(d, "slug", None)
        if d_slug == slug:
            return str(d["name"] if isinstance(d, dict) else d.name)
    return str(slug).replace("_", " ")


@register.filter
def plain_markdown(text: str) -> str:
    """Markdown as the words it renders, without its marks (for one-line summaries such as similar
    incidents): "**VPN** `restart`" -> "VPN restart"."""
    text = text or ""
    # The same few summaries show on every view of the incident pages: a short text's words are kept.
    return _plain_words(text) if len(text) <= PLAIN_MEMO_CHARS else _plain_words.__wrapped__(text)


PLAIN_MEMO_CHARS = 4000


@functools.lru_cache(maxsize=1024)
def _plain_words(text: str) -> str:
    from django.utils.html import strip_tags

    from incidents.markup import render_markdown

    return " ".join(html.unescape(strip_tags(render_markdown(text))).split())


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    return "?" + urlencode(list(params.lists()), doseq=True) if params else "?"


@register.filter
def bs(field: Any) -> str:
    """Render a form field's widget with Bootstrap's classes and its error/help wiring for screen readers."""
    widget = field.field.widget
    input_type = getattr(widget, "input_type", "")
    if input_type in ("checkbox", "radio"):
        css = "form-check-input"
    elif input_type == "select" or widget.__class__.__name__.endswith("Select"):
        css = "form-select"
    else:
        css = "form-control"
    attrs: dict[str, str] = {"class": css + (" is-invalid" if field.errors else "")}
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_help")
    if field.errors:
        described.append(f"{field.auto_id}_error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs=attrs)


@register.simple_tag(takes_context=True)
def responder(context: dict[str, Any]) -> bool:
    """Whether the signed-in user works the console (cached on the user for the request)."""
    request = context.get("request")
    return bool(request is not None and desk_user(request.user).is_responder)


NAV_SECTIONS = {"queue": "queue", "incident": "queue", "teams": "teams", "team": "teams", "report": "report"}
NAV_SECTIONS.update(problems="problems", problem="problems", imports="imports")
NAV_SECTIONS["import"] = "imports"


@register.simple_tag(takes_context=True)
def interviewer(context: dict[str, Any]) -> bool:
    """Whether the navbar shows "Interviews": decided at sign-in by the interviews app (session key
    `interviews_nav`), so that no page pays a query for it."""
    request = context.get("request")
    session = getattr(request, "session", None)
    return bool(session is not None and session.get("interviews_nav"))


@register.simple_tag(takes_context=True)
def nav_section(context: dict[str, Any]) -> str:
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match is not None else ""
    return "mine" if name == "my_incidents" else NAV_SECTIONS.get(name or "", "")


@register.simple_tag
def field_html(field: Any, wrapper_class: str = "") -> str:
    """incidents/_field.html for one form field, written out in Python: the incident page shows some thirty
    fields, and an include per field (with its own context and a dozen nodes) was a third of the page's CPU.
    The HTML is the template's, byte for byte (tests/incidents/test_views.py renders both); radio buttons,
    which the incident page does not use, go through the template."""
    if field.is_hidden:
        return format_html("\n{}\n", field)
    input_type = getattr(field.field.widget, "input_type", "")
    if input_type == "radio":
        from django.template.loader import render_to_string

        return render_to_string("incidents/_field.html", {"field": field, "wrapper_class": wrapper_class})
    esc = conditional_escape  # as the template's autoescaping: a value marked safe stays as it is
    label = esc(field.label)
    parts = [f'\n\n<div class="mb-3{" " + esc(wrapper_class) if wrapper_class else ""}">\n  ']
    if input_type == "checkbox":
        parts.append(
            f'\n  <div class="form-check">\n    {bs(field)}\n    <label class="form-check-label"'
            f' for="{esc(field.id_for_label)}">{label}</label>\n  </div>\n  '
        )
    else:
        required = ' <span class="text-danger" aria-hidden="true">*</span>' if field.field.required else ""
        parts.append(
            f'\n  <label class="form-label" for="{esc(field.id_for_label)}">{label}{required}</label>\n'
            f"  {bs(field)}\n  "
        )
    parts.append("\n  ")
    if field.help_text:
        parts.append(f'<div class="form-text" id="{esc(field.auto_id)}_help">{esc(field.help_text)}</div>')
    parts.append("\n  ")
    if field.errors:
        errors = " ".join(esc(error) for error in field.errors)
        parts.append(f'<div class="invalid-feedback d-block" id="{esc(field.auto_id)}_error">{errors}</div>')
    parts.append("\n</div>\n\n")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or Django's own widget HTML


# --- the page's chrome (base.html) ---------------------------------------------------------------------------
# The navbar, footer, shortcuts dialog and static links are the same for everyone with the same roles, section
# and language: some twenty URL lookups and static paths that every page rendered anew (a sixth of the queue
# page's CPU). Each part is rendered once per process and key from a context that holds the key's fields and
# nothing else, so no part can show what belongs to another user; the user's name and the CSRF token, which
# are per request, go in through placeholders.


class ChromeKey(NamedTuple):
    """All that templates/_chrome_*.html may read: the cache key and the templates' whole context."""

    language: str
    script_prefix: str
    urlconf: str | None
    is_authenticated: bool
    is_staff: bool
    is_responder: bool
    is_interviewer: bool
    nav: str  # the section the page is in (nav_section)
    namespace: str  # the URL namespace of the page ("reports" and "interviews" light their link)


CHROME_PARTS = frozenset(("head", "nav", "foot"))
CHROME_NAME = "\ue000name\ue000"
CHROME_CSRF = "\ue000csrf\ue000"
_CHROME_SPLIT = re.compile(f"({CHROME_NAME}|{CHROME_CSRF})")
_chrome: dict[tuple[str, ChromeKey], tuple[str, ...]] = {}


def chrome_key(context: Any) -> ChromeKey:
    """The chrome's key for the request being rendered (memoised on the request)."""
    request = context.get("request")
    key = getattr(request, "_desk_chrome_key", None)
    if key is not None:
        return key
    user = getattr(request, "user", None)
    authenticated = bool(user is not None and user.is_authenticated)
    match = getattr(request, "resolver_match", None)
    urlconf = get_urlconf()
    key = ChromeKey(
        language=translation.get_language() or "",
        script_prefix=get_script_prefix(),
        urlconf=urlconf if urlconf is None or isinstance(urlconf, str) else repr(urlconf),
        is_authenticated=authenticated,
        is_staff=authenticated and bool(user.is_staff),  # type: ignore[union-attr]
        is_responder=responder(context),
        is_interviewer=interviewer(context),
        nav=nav_section(context),
        namespace=(match.namespace or "") if match is not None else "",
    )
    if request is not None:
        request._desk_chrome_key = key
    return key


@register.simple_tag(takes_context=True)
def chrome(context: Any, part: str) -> SafeString:
    """One part of base.html ("head", "nav", "foot": templates/_chrome_<part>.html), rendered once per process
    for each ChromeKey, with this request's user name and CSRF token put in."""
    if part not in CHROME_PARTS:
        raise template.TemplateSyntaxError(f"chrome: no part {part!r}")
    key = chrome_key(context)
    pieces = _chrome.get((part, key))
    if pieces is None:
        rendered = render_to_string(
            f"_chrome_{part}.html", {**key._asdict(), "user_name": CHROME_NAME, "csrf_token": CHROME_CSRF}
        )
        pieces = tuple(_CHROME_SPLIT.split(rendered.removesuffix("\n")))
        if len(_chrome) > 1000:  # a bound: there are few roles, sections and languages
            _chrome.clear()
        _chrome[(part, key)] = pieces
    if len(pieces) == 1:
        return SafeString(pieces[0])
    fill = {CHROME_NAME: "", CHROME_CSRF: ""}
    if CHROME_NAME in pieces:
        user = context.get("request").user
        fill[CHROME_NAME] = conditional_escape(user.get_full_name() or user.get_username())
    if CHROME_CSRF in pieces:
        fill[CHROME_CSRF] = conditional_escape(context.get("csrf_token") or "")
    return SafeString("".join(fill.get(piece, piece) for piece in pieces))


# Where the reference goes in the URLs reference_url reverses: a reference no incident has (keys start at 1).
_REFERENCE_SLOT = "INC-000000"
_reference_urls: dict[tuple[str, bool, str | None, str], tuple[str, str]] = {}


@register.simple_tag
def reference_url(name: str, reference: str | None = None) -> str:
    """`{% url name reference %}` (`{% url name %}` without a reference) for an incident's reference, reversed
    once per process, URLconf and script prefix with a placeholder where the reference goes: the incident page
    reversed about fifteen URLs per view, a tenth of its CPU. A reference is INC- and digits (nothing to quote);
    anything else is reversed as the tag would. Not escaped, as `{% url ... as name %}`: `{{ }}` escapes it."""
    if reference is not None and not REFERENCE_RE.match(reference):
        return reverse(name, args=[reference])
    urlconf = get_urlconf()
    key = (
        name,
        reference is not None,
        urlconf if urlconf is None or isinstance(urlconf, str) else repr(urlconf),
        get_script_prefix(),
    )
    parts = _reference_urls.get(key)
    if parts is None:
        if reference is None:
            parts = (reverse(name), "")
        else:
            head, _, tail = reverse(name, args=[_REFERENCE_SLOT]).rpartition(_REFERENCE_SLOT)
            parts = (head, tail)
        if len(_reference_urls) > 1000:  # a bound: there are few names, URLconfs and prefixes
            _reference_urls.clear()
        _reference_urls[key] = parts
    return f"{parts[0]}{reference or ''}{parts[1]}"


def _forget_chrome(**kwargs: Any) -> None:
    _chrome.clear()  # settings that the parts read (static files, URLs) changed: in tests only
    _reference_urls.clear()


setting_changed.connect(_forget_chrome)
