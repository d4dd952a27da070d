"""The events endpoint, the Alertmanager adapter and the integrations API.

The events endpoints authenticate by routing key, not by user: no session, no CSRF, no user
throttle. A wrong or missing key answers 404 whether or not it ever existed; each integration has
its own rate limit (429 with Retry-After).
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import CursorPagination
from incidents.errors import InvalidTransition

from .. import events
from ..models import Integration
from . import serializers as s

NOT_FOUND = "No integration has this routing key."
EVENT_FIELDS = ("client", "client_url", "links", "images")  # kept with the payload


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class IntegrationRateLimit:
    """A fixed one-minute window counted with the cache's atomic add and incr (one round trip each with
    Redis), so the cost per event stays constant at any rate. DRF's SimpleRateThrottle keeps and rewrites a
    list of every request's time in the window: fine at 60/min, quadratic at the rates monitoring sends."""

    window = 60

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def hit(self) -> float | None:
        """Count one event; None when allowed, else the seconds until the window ends."""
        now = time.time()
        start = int(now // self.window) * self.window
        key = f"intake-rate:{self.integration.pk}:{start}"
        cache.add(key, 0, timeout=self.window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.add(key, 1, timeout=self.window + 5)
            count = 1
        if count > self.integration.rate_limit_per_minute:
            return max(start + self.window - now, 1.0)
        return None


ERRORS = {
    400: OpenApiResponse(description="Invalid input: `{field: [messages]}`"),
    404: OpenApiResponse(description="No active integration has this routing key"),
    409: OpenApiResponse(
        description="`invalid_transition`: e.g. acknowledging an incident nobody classified"
    ),
    413: OpenApiResponse(description="The body is over INTAKE_EVENT_MAX_BYTES"),
    429: OpenApiResponse(description="Over the integration's rate limit; see Retry-After"),
}


class EventsBase(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        limit = settings.INTAKE_EVENT_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        too_big = f"The body is larger than {limit} bytes."
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(too_big)
        try:
            if len(request._request.body) > limit:
                raise PayloadTooLarge(too_big)
        except RequestDataTooBig as exc:
            raise PayloadTooLarge(too_big) from exc

    def _routing_key(self, request: Request, in_body: str = "") -> str:
        """The key from the body or query string, `Authorization: Bearer <key>`, or `X-Routing-Key`; a 400
        naming routing_key when there is none (never a 401: monitoring tools resend forever on those)."""
        key = routing_key(request.META, request.query_params, in_body)
        if not key:
            raise exceptions.ValidationError(
                {
                    "routing_key": [
                        "Give the routing key: in the body or query string, as `Authorization: Bearer <key>`, "
                        "or in the X-Routing-Key header."
                    ]
                }
            )
        return key

    def _integration(self, request: Request, raw_key: str) -> Integration:
        # Looked up and counted already when events_route handed the event over (see there).
        lean: Lean | None = getattr(request._request, "_events_lean", None)
        if lean is not None and lean.raw_key == raw_key:
            integration, wait = lean.integration, lean.wait
        else:
            integration = events.integration_for_key(raw_key)
            wait = None if integration is None else IntegrationRateLimit(integration).hit()
        if integration is None:
            raise Http404(NOT_FOUND)
        if wait is not None:
            self.throttled(request, wait)
        return integration

    def _body(self, request: Request) -> Any:
        data = request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
        return data


class EventsView(EventsBase):
    @extend_schema(
        operation_id="events_create",
        request=s.EventSerializer,
        responses={202: s.EventAcceptedSerializer, **ERRORS},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """A monitoring event: trigger, acknowledge or resolve (PagerDuty Events API v2 shape). Also at
        `/api/v1/events/v2/enqueue`, so PagerDuty's clients work with the base URL `.../api/v1/events`."""
        lean: Lean | None = getattr(request._request, "_events_lean", None)
        if lean is not None and lean.error is not None:
            raise lean.error  # raised by the domain on events_route: answered here, as if raised here
        data = self._body(request)
        values = s.plain_trigger(data)
        if values is None:
            serializer = s.EventInputSerializer(data=data)
            serializer.is_valid(raise_exception=True)
            values = serializer.validated_data
        integration = self._integration(request, self._routing_key(request, values.get("routing_key", "")))
        payload = dict(values.get("payload") or {})
        payload |= {field: values[field] for field in EVENT_FIELDS if values.get(field)}
        if values["event_action"] == "resolve":
            # A resolve's own summary is its resolution; its timestamp, when the condition cleared.
            payload |= {"resolution": payload.get("summary", ""), "cleared_at": payload.get("timestamp")}
        result = events.handle(
            integration, event_action=values["event_action"], dedup_key=values["dedup_key"], payload=payload
        )
        return Response(accepted(result), status=status.HTTP_202_ACCEPTED)


def routing_key(meta: Any, query: Any, in_body: str) -> str:
    """The routing key as EventsBase takes it (in_body first), or "" when there is none."""
    scheme, _, token = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    return (
        in_body
        or query.get("routing_key", "")
        or (token.strip() if scheme.lower() == "bearer" else "")
        or meta.get("HTTP_X_ROUTING_KEY", "").strip()
    )


def accepted(result: events.EventResult) -> dict[str, Any]:
    """The 202 answer's body."""
    body: dict[str, Any] = {
        "status": "success",
        "dedup_key": result.dedup_key,
        "incident": result.reference,
    }
    if result.message:
        body["message"] = result.message
    return body


class Lean(NamedTuple):
    """What events_route did before handing an event over to EventsView."""

    raw_key: str
    integration: Integration | None
    wait: float | None  # the rate limit's answer (the event is counted once)
    error: Exception | None = None


# The domain's errors that EventsView answers (incidents.api.handlers); anything else is a 500 on both routes.
ANSWERED = (exceptions.APIException, Http404, PermissionDenied, DjangoValidationError, InvalidTransition)
JSON_ACCEPTED = ("", "*/*", "application/json")
_events_view = EventsView.as_view()


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _plain_event(request: HttpRequest) -> tuple[dict[str, Any], str] | None:
    """The validated trigger and its routing key when the event takes the lean route, else None. Nothing
    is written or counted here."""
    meta = request.META
    if (
        request.method != "POST"
        or request.content_type != "application/json"
        or (request.content_params or {}).get("charset", "utf-8").lower() not in ("utf-8", "utf8")
        or meta.get("HTTP_ACCEPT", "").strip() not in JSON_ACCEPTED
        or not request.GET.keys() <= {"routing_key"}
    ):
        return None
    limit = settings.INTAKE_EVENT_MAX_BYTES
    declared = meta.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        return None
    try:
        body = request.body
        if len(body) > limit:
            return None
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)  # as DRF's STRICT_JSON
    except (RequestDataTooBig, ValueError, RecursionError):
        return None  # EventsView answers 413 or 400
    values = s.plain_trigger(data) if isinstance(data, dict) else None
    if values is None:
        return None
    raw_key = routing_key(meta, request.GET, values.get("routing_key", ""))
    return (values, raw_key) if raw_key else None


def events_route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """POST /api/v1/events/ without DRF's request, negotiation and response for the plain trigger nearly every
    monitoring tool sends (serializers.plain_trigger, JSON in and out): the same answer as EventsView's, for
    a third of a dedup hit's CPU. Anything else is EventsView's, and so is every answer other than the 202
    (given what was looked up and counted here, so that an event is counted once)."""
    plain = _plain_event(request)
    if plain is None:
        return _events_view(request, *args, **kwargs)
    values, raw_key = plain
    integration = events.integration_for_key(raw_key)
    wait = None if integration is None else IntegrationRateLimit(integration).hit()
    if integration is None or wait is not None:
        request._events_lean = Lean(raw_key, integration, wait)  # type: ignore[attr-defined]
        return _events_view(request, *args, **kwargs)
    # As DRF leaves the request of a view without authentication (what middleware sees on the way out).
    request.user, request.auth = AnonymousUser(), None  # type: ignore[attr-defined]
    try:
        result = events.handle(
            integration, event_action="trigger", dedup_key=values["dedup_key"], payload=values["payload"]
        )
    except ANSWERED as exc:
        request._events_lean = Lean(raw_key, integration, None, exc)  # type: ignore[attr-defined]
        return _events_view(request, *args, **kwargs)
    return HttpResponse(
        JSONRenderer().render(accepted(result)),
        status=status.HTTP_202_ACCEPTED,
        content_type="application/json",
        headers={"Allow": "POST, OPTIONS", "Vary": "Accept"},
    )


# What Django (csrf_exempt) and drf-spectacular (the schema of EventsView) read on the view.
events_route.__dict__.update({k: v for k, v in _events_view.__dict__.items() if k != "__wrapped__"})


ALERTMANAGER_SEVERITIES = {
    "critical": "critical",
    "page": "critical",
    "error": "error",
    "warning": "warning",
    "info": "info",
    "none": "info",
}


def _web(url: Any) -> str:
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else ""


def alert_to_payload(alert: dict[str, Any], external_url: str) -> dict[str, Any]:
    """Map one Alertmanager alert to an event payload: summary from the annotations, source from the labels,
    the firing's startsAt as its timestamp (a redelivered firing counts once), the generator's link, and
    for a resolved alert its `resolution` annotation (if any) and endsAt."""
    labels, annotations = alert.get("labels") or {}, alert.get("annotations") or {}
    summary = (
        annotations.get("summary") or annotations.get("description") or labels.get("alertname") or "Alert"
    )
    source = labels.get("instance") or labels.get("job") or urlsplit(external_url).hostname or "alertmanager"
    severity = ALERTMANAGER_SEVERITIES.get((labels.get("severity") or "").lower(), "error")
    details = {
        "labels": labels,
        "annotations": annotations,
        **{k: alert[k] for k in ("startsAt", "endsAt", "generatorURL") if alert.get(k)},
    }
    payload: dict[str, Any] = {
        "summary": summary[:1024],
        "source": source[:255],
        "severity": severity,
        "custom_details": details,
        "client": "Alertmanager",
    }
    started = events.parse_time(alert.get("startsAt"))
    if started is not None:
        payload["timestamp"] = started.isoformat()
    for label in ("job", "alertname"):
        if labels.get(label):
            payload["component" if label == "job" else "class"] = labels[label][:255]
    if _web(external_url):
        payload["client_url"] = external_url
    if _web(alert.get("generatorURL")):
        payload["links"] = [{"href": alert["generatorURL"], "text": "Source (generator URL)"}]
    if alert.get("status") == "resolved":
        payload["resolution"] = annotations.get("resolution", "")
        payload["cleared_at"] = alert.get("endsAt")
    return payload


class AlertmanagerView(EventsBase):
    @extend_schema(
        operation_id="events_alertmanager_create",
        parameters=[
            OpenApiParameter(
                "routing_key",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="Or `Authorization: Bearer <key>` (Alertmanager's http_config), or X-Routing-Key.",
            )
        ],
        request=s.AlertmanagerSerializer,
        responses={202: s.AlertmanagerAcceptedSerializer, **ERRORS},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Prometheus Alertmanager's webhook: each alert's fingerprint is its dedup_key; firing triggers,
        resolved resolves (held until classification for an incident nobody classified). One refused alert
        does not fail the others: it is reported in its result, and the answer stays 202 so Alertmanager
        does not resend."""
        raw_key = self._routing_key(request)
        data = self._body(request)
        serializer = s.AlertmanagerSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        integration = self._integration(request, raw_key)
        external = serializer.validated_data.get("externalURL", "")
        results = []
        for alert in serializer.validated_data["alerts"]:
            event_action = "trigger" if alert["status"] == "firing" else "resolve"
            item: dict[str, Any] = {"fingerprint": alert["fingerprint"], "event_action": event_action}
            try:
                result = events.handle(
                    integration,
                    event_action=event_action,
                    dedup_key=alert["fingerprint"],
                    payload=alert_to_payload(alert, external),
                )
            except InvalidTransition as exc:
                item |= {"incident": None, "message": str(exc)}
            else:
                item |= {"incident": result.reference}
                if result.message:
                    item["message"] = result.message
            results.append(item)
        return Response({"status": "success", "results": results}, status=status.HTTP_202_ACCEPTED)


class IntegrationPagination(CursorPagination):
    ordering = "slug"


class IntegrationViewSet(viewsets.ModelViewSet):
    """Monitoring integrations, for admins. The routing key is shown once: in the answer to create and
    to rotate_key; afterwards only its first characters (`key_prefix`)."""

    queryset = Integration.objects.select_related("domain", "category__domain", "team")
    serializer_class = s.IntegrationSerializer
    permission_classes = [permissions.IsAdminUser]
    pagination_class = IntegrationPagination
    lookup_field = "slug"

    @extend_schema(responses={201: s.IntegrationWithKeySerializer, 400: ERRORS[400]})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            integration = Integration(**serializer.validated_data)
            raw = integration.set_new_key()
            integration.save()
            events.service_user(integration)
        out = s.IntegrationWithKeySerializer(integration, context={"routing_key": raw})
        return Response(out.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.IntegrationWithKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate_key(self, request: Request, slug: str | None = None) -> Response:
        """A new routing key; the old one stops working at once."""
        integration = self.get_object()
        raw = integration.set_new_key()
        integration.save(update_fields=["key_hash", "key_prefix", "key_rotated_at"])
        return Response(s.IntegrationWithKeySerializer(integration, context={"routing_key": raw}).data)
