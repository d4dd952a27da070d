"""What the console's queue page shows, computed in one pass so that the page renders fast at scale.

The queue is the page agents keep open all day and that polls every 30 s. Rendering fifty model
instances through template tags and filters cost more than the SQL (about 1,100 tag evaluations a
page), so rows are built here as plain dicts of ready strings, the choice lists come from a few
narrow queries on the small tables, and what needs attention is counted in one query whose counts
stop at a cap.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import pickle
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, NamedTuple

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString

from .models import Category, Domain, Incident, Membership, SavedQueueView, SlaStatus, Team, reference_for
from .selectors import desk_user, incidents_handled_by, sla_q
from .templatetags.desk import priority_badge, state_badge
from .timeline import Actor

S = Incident.State
# The columns a queue row reads: the wide text columns (description and its HTML) stay on disk.
ROW_FIELDS = (
    "id",
    "title",
    "state",
    "priority",
    "confidential",
    "received_at",
    "sla_response",
    "sla_resolution",
    "domain__name",
    "domain__restricted",  # audited when shown (audit.note_viewed_ids)
    "category__path",
    "team__name",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "updated_at",
    "responded_at",
    "response_due_at",
    "resolution_due_at",
)
SLA_LABELS = {"response": "Response", "resolution": "Resolution"}
# Clock states that still count down (the engine's SlaStatus values).
RUNNING = ("pending", "warning", "breached")


@dataclass(frozen=True)
class QueueChoices:
    """The options of the filter and bulk-action selects, read once per page from the small tables."""

    domains: list[tuple[int, str, str]]  # id, slug, name
    teams: list[tuple[int, str, str]]
    categories: list[tuple[int, str]]  # id, label
    assignees: list[tuple[int, str, str]]  # responders (members of a team): id, username, label


def queue_choices() -> QueueChoices:
    """Four narrow queries on the configuration tables; none touches incidents.

    Assignees are the members of teams (the people the lifecycle lets us assign), read from the
    memberships with their usernames, de-duplicated here rather than by a DISTINCT in SQL.
    """
    members: dict[int, tuple[int, str, str]] = {}
    for user_id, username, first, last in (
        Membership.objects.filter(user__is_active=True)
        .order_by("user__username")
        .values_list("user_id", "user__username", "user__first_name", "user__last_name")
    ):
        full = f"{first} {last}".strip()
        members.setdefault(user_id, (user_id, username, f"{full} ({username})" if full else username))
    return QueueChoices(
        domains=list(Domain.objects.order_by("name").values_list("id", "slug", "name")),
        teams=list(Team.objects.order_by("tier", "name").values_list("id", "slug", "name")),
        categories=[
            (pk, f"{name} ({path})")
            for pk, name, path in Category.objects.order_by("domain__name", "path").values_list(
                "id", "name", "path"
            )
        ],
        assignees=list(members.values()),
    )


CHOICES_CACHE_KEY = "console:queue-choices"
CHOICES_CACHE_SECONDS = 10


def cached_queue_choices() -> QueueChoices:
    """queue_choices(), shared for a few seconds: every agent's every page load reads the same lists.

    A team, category or member added in the administration shows in the selects within
    CHOICES_CACHE_SECONDS; saving the bulk form validates against the database, never against this list.
    """
    choices = cache.get(CHOICES_CACHE_KEY)
    if choices is None:
        choices = queue_choices()
        cache.set(CHOICES_CACHE_KEY, choices, CHOICES_CACHE_SECONDS)
    return choices


Lists = list[tuple[str, str]]


def options_html(items: Iterable[tuple[Any, Any]], selected: Collection[str] = ()) -> SafeString:
    """`<option>`s of a select, escaped as Django's templates escape, the `selected` values marked.

    The queue's thirteen selects were the largest part of its template: one template loop per select
    and three variables per option, each through the template engine's localisation and escaping."""
    return SafeString(
        "".join(
            f'<option value="{escape(str(value))}"{" selected" if str(value) in selected else ""}>'
            f"{escape(str(label))}</option>"
            for value, label in items
        )
    )


def queue_options(
    choices: QueueChoices, params: Any, *, sort: str, sorts: Lists, sla_filters: Lists, bulk_actions: Lists
) -> dict[str, SafeString]:
    """The options of the queue's filter selects (the current filters selected) and bulk-action selects.

    The same for every agent with the same filters in the same language while the lists last: rendered once
    per process for each (language, lists, selected values) and reused. The key is all they are made of (the
    labels of the model's choices are translated, hence the language)."""
    selected = tuple(
        tuple(params.getlist(key)) for key in ("state", "priority", "domain", "team", "assignee", "sla")
    )
    key = (
        translation.get_language(),
        tuple(choices.domains),
        tuple(choices.teams),
        tuple(choices.categories),
        tuple(choices.assignees),
        selected,
        sort,
        tuple(sorts),
        tuple(sla_filters),
        tuple(bulk_actions),
    )
    options = _options.get(key)
    if options is None:
        if len(_options) > 500:  # a bound: few filter combinations are in use at once
            _options.clear()
        options = _options[key] = _queue_options(
            choices, params, sort=sort, sorts=sorts, sla_filters=sla_filters, bulk_actions=bulk_actions
        )
    return options


_options: dict[tuple[Any, ...], dict[str, SafeString]] = {}


def _queue_options(
    choices: QueueChoices, params: Any, *, sort: str, sorts: Lists, sla_filters: Lists, bulk_actions: Lists
) -> dict[str, SafeString]:
    one = {key: [params.get(key, "")] for key in ("domain", "team", "assignee", "sla")}
    return {
        "state": options_html(S.choices, params.getlist("state")),
        "priority": options_html(((p, f"P{p}") for p in "12345"), params.getlist("priority")),
        "domain": options_html(((slug, name) for _, slug, name in choices.domains), one["domain"]),
        "team": options_html(((slug, name) for _, slug, name in choices.teams), one["team"]),
        "assignee": options_html(
            ((username, label) for _, username, label in choices.assignees), one["assignee"]
        ),
        "sla": options_html(sla_filters, one["sla"]),
        "sort": options_html(sorts, [sort]),
        "bulk_action": options_html(bulk_actions),
        "bulk_assignee": options_html((pk, label) for pk, _, label in choices.assignees),
        "bulk_domain": options_html((pk, name) for pk, _, name in choices.domains),
        "bulk_category": options_html(choices.categories),
        "bulk_team": options_html((pk, name) for pk, _, name in choices.teams),
        "impact": options_html(Incident.Impact.choices),
        "urgency": options_html(Incident.Urgency.choices),
        "cancel_reason": options_html(Incident.CancelReason.choices),
    }


@functools.lru_cache(maxsize=32)
def states_titles(language: str | None) -> tuple[str, str]:
    """The titles that name the open and the active states (Incident.OPEN_STATES, ACTIVE_STATES), per language."""
    return (
        "Open: " + ", ".join(str(S(s).label) for s in Incident.OPEN_STATES),
        "Active, still being worked: " + ", ".join(str(S(s).label) for s in Incident.ACTIVE_STATES),
    )


class SavedView(NamedTuple):
    pk: int
    name: str
    query: str


# The saved views' statement, compiled once per database alias: it runs on every page load.
_saved_views_sql: dict[str, str] = {}


def saved_views(user_id: int) -> list[SavedView]:
    """The user's saved queue views by name: one query, compiled by the ORM once per process."""
    sql = _saved_views_sql.get(connection.alias)
    if sql is None:
        query = SavedQueueView.objects.filter(user_id=0).values_list("pk", "name", "query").query
        sql, params = query.sql_with_params()
        if list(params) != [0]:  # the user must be the one parameter
            raise RuntimeError(f"saved_views: unexpected parameters {params!r}")
        _saved_views_sql[connection.alias] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        return [SavedView(*row) for row in cursor.fetchall()]


# The compiled statement of a queue page, by `memo_key` (see queue_page). Bounded: a desk has few reaches.
_page_sql: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}


def queue_page(
    qs: QuerySet[Incident] | Callable[[], QuerySet[Incident]],
    limit: int,
    *,
    memo_key: tuple[Any, ...] | None = None,
) -> list[dict[str, Any]]:
    """At most `limit` rows of the ordered queryset as plain values: one query, no model instances.

    With `memo_key`, the caller vouches that the statement depends on nothing but that key (the first page
    of the unfiltered queue depends on the reach, the sort and `open` only): on PostgreSQL it is compiled
    once per process and key and then run as it is, which saves the ORM's compilation on every page and
    every 30 s poll. `qs` may then be a function that builds the queryset, called only to compile it: building
    the visibility filters was as costly as compiling them. PostgreSQL returns every column of a row as its
    Python value (psycopg2's types, aware datetimes), so the rows are the same dicts as values() makes
    (tests/incidents/test_console.py).
    """
    if memo_key is None or connection.vendor != "postgresql":
        return list(_page_values(qs() if callable(qs) else qs, limit))
    key = (connection.alias, limit, *memo_key)
    statement = _page_sql.get(key)
    if statement is None:
        sql, params = _page_values(qs() if callable(qs) else qs, limit).query.sql_with_params()
        if len(_page_sql) > 1000:
            _page_sql.clear()
        statement = _page_sql[key] = (sql, tuple(params))
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _page_values(qs: QuerySet[Incident], limit: int) -> QuerySet[Incident, dict[str, Any]]:
    fields = (*ROW_FIELDS, "deadline_key") if "deadline_key" in qs.query.annotations else ROW_FIELDS
    return qs.values(*fields)[:limit]


def duration(seconds: float) -> str:
    """A countdown-sized duration: "2 d 3 h", "2 h 10 m", "35 m", "<1 m" (static/js/desk.js says the same)."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m" if minutes else "<1 m"


def countdown_text(due: datetime, now: datetime) -> str:
    left = (due - now).total_seconds()
    return f"{duration(left)} left" if left >= 0 else f"breached {duration(left)} ago"


def running_clock(values: dict[str, Any]) -> tuple[str, str, datetime | None]:
    """The clock a responder races now: (clock, its state, its deadline). The response clock until someone
    responded (or the condition cleared before a response), then the resolution clock; ("", "", None) when
    no clock runs (not classified, no policy)."""
    if values["responded_at"] is None and values["sla_response"] not in ("", SlaStatus.CLEARED):
        return "response", values["sla_response"], values["response_due_at"]
    if values["sla_resolution"]:
        return "resolution", values["sla_resolution"], values["resolution_due_at"]
    return "", "", None


SLA_WORDS = {"met": "met", "paused": "paused (on hold)", "cleared": "cleared before a response"}


def _sla_html(values: dict[str, Any], now: datetime) -> str:
    """The running clock as a live countdown ("2 h 10 m left", "breached 35 m ago"), coloured by its state;
    a paused, met or cleared clock in words. static/js/desk.js ticks `data-due` every second."""
    before, due, after = _sla_parts(values)
    return before if due is None else before + countdown_text(due, now) + after


def _sla_parts(values: dict[str, Any]) -> tuple[str, datetime | None, str]:
    """_sla_html in the parts that do not change with time, around its countdown: (before, deadline, after);
    the deadline is None when there is no countdown (then `before` is the whole cell)."""
    clock, status, due = running_clock(values)
    if not clock:
        return '<span class="text-secondary" title="No SLA clock runs">—</span>', None, ""
    label = SLA_LABELS[clock]
    if status in RUNNING and due is not None and values["state"] in Incident.ACTIVE_STATES:
        local = timezone.localtime(due)
        return (
            f'<span class="sla sla-{escape(status)} sla-countdown" data-due="{local.isoformat()}"'
            f' title="{label} due {local.strftime("%a %-d %b, %H:%M")}"><span class="sla-clock">{label}</span>'
            f' <span class="sla-left">',
            due,
            "</span></span>",
        )
    words = SLA_WORDS.get(status, escape(status))
    return f'<span class="sla sla-{escape(status)}" title="{label} clock">{label} {words}</span>', None, ""


# One queue row. Built with str.format from values escaped by html.escape (the same escaping as Django's, without
# its lazy-string wrappers) rather than by template tags: fifty rows of a dozen template variables each were the
# largest part of the page's server time.
ROW_HTML = (
    '<tr class="queue-row" data-href="{url}" data-ref="{reference}">'
    '<td class="col-check"><input class="form-check-input row-check" type="checkbox" name="ids" value="{pk}"'
    ' aria-label="Select {reference}"></td>'
    '<td class="text-break"><a class="incident-link fw-semibold" href="{url}"><span class="reference">{reference}'
    "</span> {title}</a>{confidential}</td>"
    "<td>{state}</td><td>{priority}</td>"
    '<td class="d-none d-md-table-cell small">{domain}{category}</td>'
    '<td class="d-none d-lg-table-cell small">{team}</td>'
    '<td class="d-none d-md-table-cell small">{assignee}</td>'
    '<td class="small">{sla}</td>'
    '<td class="d-none d-sm-table-cell small text-nowrap"><time class="age" datetime="{received_iso}"'
    ' title="{received_title}">{received_ago} ago</time></td>'
    '<td class="d-none d-xl-table-cell small text-nowrap"><time class="age" datetime="{updated_iso}"'
    ' title="{updated_title}">{updated_ago} ago</time></td></tr>\n'
)
# ROW_HTML cut at the words that change with time alone: the countdown (inside {sla}) and the two ages.
_ROW_HEAD, _rest = ROW_HTML.split("{sla}")
_ROW_SLA_TAIL, _rest = _rest.split("{received_ago}")
_ROW_RECEIVED_TAIL, _ROW_TAIL = _rest.split("{updated_ago}")
CONFIDENTIAL_HTML = SafeString(
    ' <span class="badge text-bg-light border" title="Reported confidentially">confidential</span>'
)
UNASSIGNED_HTML = SafeString('<span class="text-secondary">unassigned</span>')
AGE_UNITS = ((86400 * 365, "y"), (86400 * 7, "w"), (86400, "d"), (3600, "h"), (60, "min"))


def age(seconds: float) -> str:
    """A queue-sized age ("5 min", "3 h", "2 d"): the full date is in the cell's title. static/js/desk.js
    says the same every second, so that rows a poll left in place (304) still age."""
    for size, unit in AGE_UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "<1 min"


_row_values = operator.itemgetter(*ROW_FIELDS)


class _Row(NamedTuple):
    """A row as rendered, but for its countdown and ages: head + countdown + sla_tail + received age +
    received_tail + updated age + tail."""

    head: str
    due: datetime | None  # the countdown's deadline, None without one
    sla_tail: str
    received: datetime
    received_tail: str
    updated: datetime
    tail: str


# The rows rendered lately, by the language, time zone and incident URL they were rendered with and then by
# every value a row shows (ROW_FIELDS). A row's HTML is made of its values and nothing else, in particular
# nothing of the person who reads it, so a row rendered for one agent is what any other agent who reads the
# same values gets; a changed value is another key. The 30 s polls of every open console read mostly the same
# rows again: they are cut and joined, not rendered. Bounded: emptied when it holds ROWS_KEPT rows.
_rows: dict[tuple[Any, ...], dict[tuple[Any, ...], _Row]] = {}
ROWS_KEPT = 5000


def queue_rows(page: list[dict[str, Any]], *, now: datetime | None = None) -> list[SafeString]:
    """The rows of one page as HTML, built in one pass from plain values.

    Each row is rendered once for its values (_rows) and then only its ages and countdown are written anew.
    Badges are rendered once per distinct state and priority on the page, the incident URL is built from
    one reverse() and the reference, and times are formatted here, not by template filters.
    """
    now = now or timezone.now()
    zone = timezone.get_current_timezone()  # once: timezone.localtime() looks it up on every call
    url_template = reverse("web:incident", args=["INC-000000"]).replace("INC-000000", "{}")
    setting = (translation.get_language(), zone, url_template)
    rendered = _rows.get(setting)
    if rendered is None:
        rendered = _rows[setting] = {}
    if sum(len(rows) for rows in _rows.values()) + len(page) > ROWS_KEPT:
        _rows.clear()
        rendered = _rows[setting] = {}
    badges: dict[Any, str] = {}
    rows = []
    for values in page:
        key = _row_values(values)
        row = rendered.get(key)
        if row is None:
            row = rendered[key] = _render_row(values, zone, url_template, badges)
        rows.append(
            SafeString(
                row.head
                + ("" if row.due is None else countdown_text(row.due, now))
                + row.sla_tail
                + age((now - row.received).total_seconds())
                + row.received_tail
                + age(max((now - row.updated).total_seconds(), 0))
                + row.tail
            )
        )
    return rows


def _render_row(values: dict[str, Any], zone: Any, url_template: str, badges: dict[Any, str]) -> _Row:
    """One row's parts (_Row) from its values."""
    reference = reference_for(values["id"]) or ""
    state, priority = values["state"], values["priority"]
    if ("state", state) not in badges:
        badges[("state", state)] = state_badge(state)
    if ("priority", priority) not in badges:
        badges[("priority", priority)] = priority_badge(priority)
    received = values["received_at"].astimezone(zone)
    updated = values["updated_at"].astimezone(zone)
    full_name = f"{values['assignee__first_name']} {values['assignee__last_name']}".strip()
    category = values["category__path"]
    fields = {
        "url": url_template.format(reference),
        "reference": reference,
        "pk": values["id"],
        "title": escape(values["title"]),
        "confidential": CONFIDENTIAL_HTML if values["confidential"] else "",
        "state": badges[("state", state)],
        "priority": badges[("priority", priority)],
        "domain": escape(values["domain__name"] or "—"),
        "category": f'<br><span class="text-secondary">{escape(category)}</span>' if category else "",
        "team": escape(values["team__name"] or "—"),
        "assignee": escape(full_name or values["assignee__username"])
        if values["assignee__username"]
        else UNASSIGNED_HTML,
        "received_iso": received.isoformat(),
        "received_title": received.strftime("%-d %b %Y, %H:%M"),
        "updated_iso": updated.isoformat(),
        "updated_title": updated.strftime("%-d %b %Y, %H:%M"),
    }
    sla_before, due, sla_after = _sla_parts(values)
    return _Row(
        head=_ROW_HEAD.format(**fields) + sla_before,
        due=due,
        sla_tail=sla_after + _ROW_SLA_TAIL.format(**fields),
        received=received,
        received_tail=_ROW_RECEIVED_TAIL.format(**fields),
        updated=updated,
        tail=_ROW_TAIL.format(**fields),
    )


def rows_etag(
    viewer: int | None, query: str, page: list[dict[str, Any]], *, has_previous: bool, has_next: bool
) -> str:
    """A weak ETag of what a page of queue rows shows `viewer`: the rows' values as read (whatever wrote them,
    the lifecycle, an edit, the SLA engine marking a clock, a renamed team), the page's query and bounds.

    The rows' words that change with time alone (a countdown, "5 min ago", a clock turning red at its deadline)
    are kept current by static/js/desk.js in the browser, so an unchanged ETag means the rows in the browser
    still say what a fresh page would. Weak: the bytes of a fresh page differ by those words. The viewer is in
    it so that one user's ETag never stands for another's rows, even when their rows are the same.
    """
    digest = hashlib.blake2b(pickle.dumps((viewer, query, has_previous, has_next, page)), digest_size=16)
    return f'W/"{digest.hexdigest()}"'


def capped_counts(querysets: dict[str, QuerySet[Incident]], cap: int) -> dict[str, int]:
    """Count each queryset up to `cap` rows, all in one query.

    Each count reads at most `cap` index entries (LIMIT inside the subquery), so the cost does not grow
    with the table; a count equal to the cap means "at least that many".
    """
    if not querysets:
        return {}
    return _run_counts(list(querysets), _capped_counts_sql(querysets, cap))


def _capped_counts_sql(querysets: Mapping[str, QuerySet[Incident]], cap: int) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for i, qs in enumerate(querysets.values()):
        try:
            sql, sub_params = qs.order_by().values("pk")[:cap].query.sql_with_params()
        except EmptyResultSet:  # .none(): nothing to count, and nothing to ask the database
            parts.append("0")
            continue
        # The subquery is Django's own compiled SQL; its values stay bound parameters.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped_{i})")  # noqa: S608
        params.extend(sub_params)
    return "SELECT " + ", ".join(parts), params


def _run_counts(names: list[str], statement: tuple[str, list[Any]]) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        row = cursor.fetchone()
    return {name: int(count) for name, count in zip(names, row, strict=True)}


ATTENTION = ("unclassified", "breached", "warning")
# The attention counts' statement for each reach (superuser or not, responder or not, the domains of one's teams):
# it depends on nothing else (the hidden domains are a subquery, the states constants), so it is compiled once
# per process and reach, not on every page and poll. Bounded: a desk has few distinct reaches.
_attention_sql: dict[tuple[Any, ...], tuple[str, list[Any]]] = {}


def attention_counts(user: Actor, cap: int) -> dict[str, int]:
    """What needs someone now: unclassified incidents, and open ones whose SLA the engine marks breached
    or in warning (the stored clock states, served by the partial SLA indexes of migration 0007)."""
    me = desk_user(user)
    key = (connection.alias, me.is_superuser, me.is_responder, me.domain_ids, cap)
    statement = _attention_sql.get(key)
    if statement is None:
        visible = incidents_handled_by(user)
        still_open = visible.open()
        querysets = {
            "unclassified": visible.filter(state=S.RECEIVED),
            "breached": still_open.filter(sla_q("breached")),
            "warning": still_open.filter(sla_q("warning")),
        }
        statement = _capped_counts_sql(querysets, cap)
        if len(_attention_sql) > 1000:
            _attention_sql.clear()
        _attention_sql[key] = statement
    return _run_counts(list(ATTENTION), statement)
