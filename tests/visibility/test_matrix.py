"""The authorisation matrix of issue 11, generated from the URLconf and the OpenAPI schema.

Every route Django resolves (pages, API, admin) and every method it answers is requested by every role of
SPEC section 1, for every incident (and problem) the route can address. A route that has no expectation in
EXPECT fails the test: a new route is covered the day it is added. Each API operation of the OpenAPI schema
must be among the requests made.

Two things are checked per cell:
- the status: outside visibility 404 (never 403, never a 5xx); a refused action on a visible incident 403,
  404 or 409; an allowed one anything but 401/403/404/5xx;
- the body: no title of an incident the role may not see, no internal note of one they do not see as a
  responder, no confidential reporter's identity unless they are a privacy officer or superuser, no title of
  a problem they may not see; in any page, list, count, search, export, report, similar list or problem.

Each request runs in a transaction that is rolled back, so every cell starts from the same desk.
Format-suffix aliases (`.json`) of DRF routes are the same views and are not requested twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from tests.visibility.world import (
    ROLES,
    WHISTLEBLOWER_EMAIL,
    WHISTLEBLOWER_USERNAME,
    Target,
    World,
    build_world,
    oracle_is_responder,
    oracle_sees_as,
    oracle_sees_confidential,
    oracle_sees_problem,
)

pytestmark = pytest.mark.django_db

PARAM_RE = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:[\w]+:)?(\w+)>")

# --- expectations ----------------------------------------------------------------------------------------
# rule names, explained in `expected`. A key maps to one rule, or to {METHOD: rule}.
INCIDENT_RESPONDER_ACTIONS = ("classify", "acknowledge", "escalate", "hold", "resume", "resolve", "close",
                              "cancel", "parent", "assign")  # fmt: skip
EXPECT: dict[str, str | dict[str, str]] = {
    # reporter's side
    "": "public",
    "report/": "public",
    "report/categories/": "public",
    "report/done/{token}/": "token",
    "track/{token}/": "token",
    "track/{token}/reply/": "token",
    "track/{token}/attach/": "token",
    "track/{token}/confirm/": "token",
    "track/{token}/reopen/": "token",
    "track/{token}/rate/": "token",
    "track/{token}/files/{attachment_id}/": "token",
    "survey/{token}/": "any",  # a signed survey token of the closing mail, not the tracking link
    "my/": "login",
    # console
    "desk/": "responder",
    "desk/bulk/": "responder",
    "desk/export.csv": "responder",
    "desk/views/": "responder",
    "desk/views/{pk}/delete/": "responder_object",
    "desk/preview/": "login",  # renders the Markdown it is sent, nothing of the desk
    "desk/incidents/{reference}/": "incident_console",
    "desk/incidents/{reference}/edit/": "incident_console",
    "desk/incidents/{reference}/comment/": "incident_console",
    "desk/incidents/{reference}/attach/": "incident_console",
    "desk/incidents/{reference}/files/{attachment_id}/": "incident_console",
    "desk/incidents/{reference}/parent/": "incident_console",
    "desk/incidents/{reference}/{action}/": "incident_console",
    "desk/problems/": "responder",
    "desk/problems/{pk}/": "problem",
    "desk/problems/{pk}/state/": "problem",
    "desk/problems/{pk}/follow-ups/{follow_up_id}/done/": "problem_object",
    "desk/problems/{pk}/edit/": "problem",
    "desk/problems/{pk}/follow-ups/": "problem",
    "desk/problems/{pk}/incidents/": "problem",
    "desk/incidents/{reference}/problem/": "incident_console",
    # the console's filing form: the incident's team or the privacy officer; other responders who see it get 403
    "desk/incidents/{reference}/reports/file/": "incident_console_team",
    "desk/teams/": "responder",
    "desk/teams/{slug}/": "responder",
    "reports/": "responder",
    # interviews: their own permission model (interviewers, candidates' links); checked for no 5xx and no leak
    "interviews/from-incident/{reference}/": "incident_interviewer",
    # accounts
    "accounts/login/": "public",
    "accounts/logout/": "any",
    "accounts/password_change/": "login",
    "accounts/password_change/done/": "login",
    "accounts/password_reset/": "public",
    "accounts/password_reset/done/": "public",
    "accounts/reset/{uidb64}/{token}/": "any",
    "accounts/reset/done/": "public",
    "health/": "health",
    "admin/login/": "public",
    "admin/logout/": "any",
    # API
    "api/v1/": "login",
    "api/v1/auth/token/": "any",
    "api/v1/reports/incidents.csv": "responder",
    "api/v1/reports/summary/": "responder",
    "api/v1/incidents/": "login",
    "api/v1/incidents/{reference}/": {"GET": "incident", "PATCH": "incident_responder"},
    "api/v1/incidents/{reference}/comments/": "incident",
    "api/v1/incidents/{reference}/timeline/": "incident",
    "api/v1/incidents/{reference}/attachments/": "incident",
    "api/v1/incidents/{reference}/attachments/{attachment_id}/": "incident",
    "api/v1/incidents/{reference}/similar/": "incident",
    "api/v1/incidents/{reference}/confirm/": "incident_reporter",
    "api/v1/incidents/{reference}/rate/": "incident_reporter",
    "api/v1/incidents/{reference}/reopen/": "incident",
    **{
        f"api/v1/incidents/{{reference}}/{name}/": "incident_responder" for name in INCIDENT_RESPONDER_ACTIONS
    },
    # responders read the teams; creating and changing them is for admins (the `api/v1/teams/` area rule)
    "api/v1/teams/": {"GET": "responder"},
    "api/v1/teams/{slug}/": {"GET": "responder"},
    "api/v1/teams/{slug}/oncall/": "responder",
    "api/v1/teams/{slug}/auto-assign/": "config",  # responders read, admins set
    # a reporting deadline is filed by the incident's team or the privacy officer; others who see it get 403.
    # The filings (who filed, the internal note) are read by responders only, as on the console.
    "api/v1/incidents/{reference}/file_report/": {"GET": "incident_console", "POST": "incident_team"},
    # everyone's own profile and tokens; a made-up token id is an honest 404
    "api/v1/me/": "login",
    "api/v1/me/tokens/": "login",
    "api/v1/me/tokens/{token_id}/": "login_object",
    # the category tree is read by anyone signed in (reporting needs it); changing it is for admins
    "api/v1/categories/": {"GET": "login"},
    "api/v1/categories/{pk}/": {"GET": "login_object"},
    "api/v1/problems/": "responder",
    "api/v1/problems/{pk}/": "problem",
    "api/v1/problems/{pk}/state/": "problem",
    "api/v1/problems/{pk}/link/": "problem",
    "api/v1/problems/{pk}/unlink/": "problem",
    "api/v1/problems/{pk}/follow-ups/": "problem",
    "api/v1/problems/{pk}/follow-ups/{follow_up_id}/done/": "problem_object",
    # authenticated by the integration's routing key, not by a user
    "api/v1/events/": "any",
    "api/v1/events": "any",
    "api/v1/events/alertmanager/": "any",
    "api/v1/events/alertmanager": "any",
    "api/v1/events/v2/enqueue": "any",
    "api/v1/events/v2/enqueue/": "any",
    # imports (console)
    "desk/imports/": "responder",
    "desk/imports/{pk}/": "responder_object",
    "api/schema/": "any",
    "api/docs/": "any",
    "api/redoc/": "any",
}
PREFIX_RULES = {
    # Whole areas with one rule, listed here so that a new area still fails until someone decides.
    "admin/": "admin",
    "interviews/": "any",
    "api/v1/interviews/": "any",
    "api/v1/calendars/": "config",
    "api/v1/sla-policies/": "config",
    "api/v1/escalation-policies/": "config",
    "api/v1/schedules/": "config",
    "api/v1/webhooks/": "config",
    "api/v1/users/": "config",
    "api/v1/teams/": "config",
    "api/v1/categories/": "config",
    "api/v1/integrations/": "config",
}


def rule_for(key: str, method: str) -> str | None:
    """The key's rule; a per-method entry without this method falls back to its area's rule."""
    rule = EXPECT.get(key)
    if isinstance(rule, str):
        return rule
    if rule is not None and method in rule:
        return rule[method]
    for prefix, prefix_rule in PREFIX_RULES.items():
        if key.startswith(prefix):
            return prefix_rule
    return None


# --- walking the URLconf -----------------------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def route_key(route: str) -> str:
    key = PARAM_RE.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", route)
    return key.replace("^", "").replace("$", "").replace("\\.", ".")


def _methods(key: str, pattern: URLPattern) -> list[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds `head` to a view's actions on its first GET: HEAD and OPTIONS follow GET, not listed.
        return sorted(m.upper() for m in actions if m not in ("head", "options"))
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if key.startswith("admin/"):
        return ["GET"]
    if view_class is not None:
        return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]
    return ["GET", "POST"]


def routes(patterns: list[Any] | None = None) -> list[tuple[str, list[str]]]:
    """(key, methods) of every route of the URLconf, format-suffix aliases left out."""
    found: dict[str, list[str]] = {}
    for route, pattern in _walk(get_resolver().url_patterns if patterns is None else patterns):
        if "(?P<format>" in route or "<drf_format_suffix:format>" in route:
            continue
        key = route_key(route)
        found[key] = sorted(set(found.get(key, [])) | set(_methods(key, pattern)))
    return sorted(found.items())


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (path.lstrip("/").replace("{id}", "{pk}"), method.upper())
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


# --- cells ---------------------------------------------------------------------------------------------------


def _fill(key: str, values: dict[str, Any]) -> str:
    return "/" + re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "1")), key)


def _payload(key: str, target: Target | None, world: World) -> dict[str, Any]:
    if target is None:
        return {}
    incident = target.incident
    team = incident.team.slug if incident.team else "team-x"
    if key.endswith("/classify/"):
        return {"domain": incident.domain.slug, "category": incident.category.path, "impact": 2, "urgency": 2,
                "team": team}  # fmt: skip
    if key.endswith("/cancel/"):
        return {"reason": "spam"}
    if key.endswith("/escalate/"):
        return {"team": "team-y", "reason": "Needs specialists"}
    if key.endswith("/hold/"):
        return {"reason": "awaiting_vendor"}
    if key.endswith("/resolve/"):
        return {"summary": "Restarted"}
    if key.endswith("/reopen/"):
        return {"reason": "Still broken"}
    if key.endswith("/close/"):
        return {"cause": "Disk full", "measures": "Rotation", "resolution_code": "fixed"}
    if key.endswith("/comments/"):
        return {"body": "A note", "public": False}
    if key.endswith("/parent/"):
        return {"parent": None}
    if key == "api/v1/incidents/{reference}/":
        return {"version": incident.version, "title": "Edited"}
    return {}


Cell = tuple[str, Target | None, Any, dict[str, Any]]


def cells(key: str, world: World, role: str) -> Iterator[Cell]:
    values: dict[str, Any] = {"action": "acknowledge", "slug": "nope", "pk": 999999, "follow_up_id": 1,
                              "uidb64": "MQ", "token": "t" * 43, "object_id": "999999", "app_label": "incidents",
                              "url": "nope/"}  # fmt: skip
    if "/teams/{slug}" in key:
        values["slug"] = "team-x"
    if "{reference}" in key or ("{token}" in key and key.startswith(("track/", "report/done/"))):
        for target in world.targets_for(role):
            incident = target.incident
            values.update(reference=incident.reference, token=incident.tracking_token,
                          attachment_id=target.attachment_id)  # fmt: skip
            yield _fill(key, values), target, None, _payload(key, target, world)
        return
    if "problems/{pk}" in key:
        for name, problem in world.problems.items():
            values.update(pk=problem.pk, follow_up_id=world.follow_up.pk if world.follow_up else 1)
            yield _fill(key, values), None, (name, problem), {}
        return
    url = _fill(key, values)
    yield url, None, None, {}
    if key in ("api/v1/incidents/", "desk/", "api/v1/reports/incidents.csv", "desk/export.csv"):
        # Searches for each hidden marker: a search never finds what the role may not see.
        for target in world.targets_for(role):
            yield f"{url}?q={target.marker}", None, None, {}
            yield f"{url}?q={target.note}", None, None, {}


# --- expectations per cell --------------------------------------------------------------------------------

# 405 answers a method the route never takes, whatever the object: it tells nothing about the incident.
NOT_VISIBLE = frozenset({404, 405})
ANON = frozenset({302, 401, 403, 404, 405})


def ok(code: int) -> bool:
    return code < 500 and code not in (401, 403, 404)


def expected(
    rule: str, world: World, role: str, target: Target | None, problem: Any
) -> Callable[[int], bool]:
    anonymous = world.user(role) is None
    responder = oracle_is_responder(world, role)
    sees = oracle_sees_as(world, role, target.incident) if target is not None else None
    if rule == "any":
        return lambda code: code < 500
    if rule == "health":
        return lambda code: code in (200, 405, 503)
    if rule in ("public", "token"):
        return ok
    if rule == "admin":
        if world.user(role) is not None and world.user(role).is_superuser:
            # read-only records refuse add/delete (403); made-up object ids are 404
            return lambda code: code < 500
        return lambda code: code == 302
    if anonymous:
        return lambda code: code in ANON
    if rule == "login":
        return ok
    if rule == "login_object":
        return lambda code: code < 500
    if rule in ("responder", "config", "responder_object"):
        if not responder:
            return lambda code: code in (403, 404, 405)
        # config and responder_object address objects by a made-up key: 404 is their honest answer
        return ok if rule == "responder" else (lambda code: code < 500)
    if rule in ("problem", "problem_object"):
        if not responder:
            return lambda code: code in (403, 404, 405)
        if not oracle_sees_problem(world, role, problem[1]):
            return lambda code: code in NOT_VISIBLE
        # problem_object: the world's follow-up belongs to one problem; under the other it is a 404
        return ok if rule == "problem" else (lambda code: code < 500)
    if rule == "incident":
        return (lambda code: code in NOT_VISIBLE) if sees is None else ok
    if rule == "incident_responder":
        if sees is None:
            return lambda code: code in NOT_VISIBLE
        return ok if sees == "responder" else (lambda code: code in (403, 404, 409))
    if rule == "incident_reporter":  # the reporter's own actions: a responder may be refused (403)
        return (
            (lambda code: code in NOT_VISIBLE) if sees is None else (lambda code: code < 500 and code != 404)
        )
    if rule == "incident_team":  # a visible incident: allowed, or refused (403) for those not on its team
        return (
            (lambda code: code in NOT_VISIBLE) if sees is None else (lambda code: code < 500 and code != 404)
        )
    if rule == "incident_console":
        return ok if sees == "responder" else (lambda code: code in NOT_VISIBLE)
    if rule == "incident_console_team":
        return (
            (lambda code: code < 500 and code != 404)
            if sees == "responder"
            else (lambda code: code in NOT_VISIBLE)
        )
    if rule == "incident_interviewer":  # needs the interviewer's permission besides seeing the incident
        return (lambda code: code < 500) if sees == "responder" else (lambda code: code in NOT_VISIBLE)
    raise AssertionError(f"unknown rule {rule}")


def leaks(
    body: str, world: World, role: str, key: str, url_target: Target | None, sees: dict[str, Any]
) -> list[str]:
    """What this body shows that the role may not read."""
    found = []
    by_token = key.startswith(("track/", "report/done/"))
    for target in world.targets.values():
        view = sees[target.key]
        if by_token and target is url_target:
            view = "reporter"  # the private link shows the reporter's view, whoever holds it
        if view is None and (target.marker in body or target.incident.reference in body):
            found.append(f"hidden incident {target.key}")
        if view != "responder" and target.note in body:
            found.append(f"internal note of {target.key}")
    confidential_ok = oracle_sees_confidential(world, role) or (
        by_token and url_target is not None and url_target.key == "confidential"
    )
    if not confidential_ok and (WHISTLEBLOWER_EMAIL in body or WHISTLEBLOWER_USERNAME in body):
        found.append("confidential reporter's identity")
    for name, problem in world.problems.items():
        if not oracle_sees_problem(world, role, problem) and world.problem_markers[name] in body:
            found.append(f"hidden problem {name}")
    return found


def _request(client: Client, method: str, url: str, data: dict[str, Any]) -> tuple[int, str]:
    is_api = url.startswith("/api/")
    with transaction.atomic():
        if method == "GET":
            response = client.get(url)
        elif is_api:
            response = client.generic(method, url, data=_json(data), content_type="application/json")
        else:
            response = client.generic(
                method, url, data=_form(data), content_type="application/x-www-form-urlencoded"
            )
        content = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        transaction.set_rollback(True)
    return response.status_code, content.decode("utf-8", "replace")


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data)


def _form(data: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in data.items() if v is not None})


# --- the tests ------------------------------------------------------------------------------------------------


def test_every_route_has_an_expectation_and_every_schema_operation_is_requested():
    all_routes = routes()
    missing = [key for key, methods in all_routes for m in methods if rule_for(key, m) is None]
    assert not missing, f"routes with no expectation in the authorisation matrix: {sorted(set(missing))}"
    requested = {(key, m) for key, methods in all_routes for m in methods}
    unrequested = schema_operations() - requested
    assert not unrequested, f"OpenAPI operations the matrix does not request: {sorted(unrequested)}"


def test_a_new_route_without_an_expectation_fails():
    from django.http import HttpResponse
    from django.urls import path

    patterns = [
        *get_resolver().url_patterns,
        path("desk/secret-new-page/", lambda request: HttpResponse("new")),
    ]
    missing = [key for key, methods in routes(patterns) for m in methods if rule_for(key, m) is None]
    assert [key for key in missing if key == "desk/secret-new-page/"] == ["desk/secret-new-page/"] * 2
    assert set(missing) <= {"desk/secret-new-page/", *_unexpected()}


def _unexpected() -> set[str]:
    return {key for key, methods in routes() for m in methods if rule_for(key, m) is None}


@pytest.mark.parametrize("role", ROLES)
def test_authorisation_matrix(role, attachment_dir):
    world = build_world()
    client = Client()
    user = world.user(role)
    if user is not None:
        client.force_login(user)
    sees = {t.key: oracle_sees_as(world, role, t.incident) for t in world.targets.values()}
    failures: list[str] = []
    requests = 0
    for key, methods in routes():
        for method in methods:
            rule = rule_for(key, method)
            assert rule is not None, key
            for url, target, problem, data in cells(key, world, role):
                if requests % 200 == 0:
                    cache.clear()  # throttles and rate limits count per test run, not per cell
                requests += 1
                code, body = _request(client, method, url, data)
                if "?q=" in url:
                    body = body.replace(url.split("?q=", 1)[1], "")  # the search box echoes the query
                if "logout" in key and user is not None:
                    client.force_login(user)  # the rollback kept the session row, not the client's cookie
                if not expected(rule, world, role, target, problem)(code):
                    view = sees[target.key] if target is not None else None
                    failures.append(f"{role} {method} {url} [{rule}, sees as {view}] answered {code}")
                for leak in leaks(body, world, role, key, target, sees):
                    failures.append(f"{role} {method} {url} [{rule}] shows the {leak}")
    print(f"authorisation matrix: role {role}: {requests} requests")
    assert not failures, f"{len(failures)} cells wrong:\n" + "\n".join(failures[:80])
