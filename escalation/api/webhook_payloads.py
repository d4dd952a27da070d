"""The bodies IncidentDesk POSTs to a subscribed webhook (escalation.webhooks), as schema components.

They are documented as OpenAPI callbacks of `POST /api/v1/webhooks/`: nothing serialises through them at
run time, but a test checks that each built payload has exactly these fields.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiCallback, OpenApiResponse, extend_schema
from rest_framework import serializers

from escalation import webhooks
from incidents.models import Incident


class WebhookIncidentSerializer(serializers.Serializer):
    reference = serializers.CharField()
    url = serializers.URLField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=Incident.State.choices)
    priority = serializers.IntegerField(allow_null=True)
    domain = serializers.CharField(allow_null=True, help_text="Domain slug.")
    category = serializers.CharField(allow_null=True, help_text="Category path.")
    team = serializers.CharField(allow_null=True, help_text="Team slug.")
    assignee = serializers.CharField(allow_null=True, help_text="Username.")
    version = serializers.IntegerField()


class _Envelope(serializers.Serializer):
    id = serializers.CharField(help_text="Idempotency key, also sent as the Idempotency-Key header.")
    occurred_at = serializers.DateTimeField()
    incident = WebhookIncidentSerializer()


class WebhookIncidentCreatedSerializer(_Envelope):
    event = serializers.ChoiceField(choices=[webhooks.CREATED])


class WebhookStateChangedSerializer(_Envelope):
    event = serializers.ChoiceField(choices=[webhooks.STATE_CHANGED])
    action = serializers.CharField(help_text="The lifecycle action: classify, acknowledge, escalate, ...")
    state = serializers.ChoiceField(choices=Incident.State.choices, help_text="The state after it.")


class WebhookCommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(
        allow_null=True, help_text="Username; null for an anonymous or a confidential reporter."
    )
    body = serializers.CharField(help_text="Markdown.")
    created_at = serializers.DateTimeField()


class WebhookPublicCommentSerializer(_Envelope):
    event = serializers.ChoiceField(choices=[webhooks.PUBLIC_COMMENT])
    comment = WebhookCommentSerializer()


class WebhookSlaSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="response, resolution or a named clock's kind.")
    name = serializers.CharField(allow_blank=True)
    due_at = serializers.DateTimeField(allow_null=True)
    target_seconds = serializers.IntegerField()


class WebhookSlaEventSerializer(_Envelope):
    event = serializers.ChoiceField(choices=[webhooks.SLA_WARNING, webhooks.SLA_BREACHED])
    sla = WebhookSlaSerializer()


PAYLOADS: dict[str, type[serializers.Serializer]] = {
    webhooks.CREATED: WebhookIncidentCreatedSerializer,
    webhooks.STATE_CHANGED: WebhookStateChangedSerializer,
    webhooks.PUBLIC_COMMENT: WebhookPublicCommentSerializer,
    webhooks.SLA_WARNING: WebhookSlaEventSerializer,
    webhooks.SLA_BREACHED: WebhookSlaEventSerializer,
}

_ACK = {204: OpenApiResponse(description="Received. Any 2xx counts; anything else is retried with back-off.")}
_SIGNED = (
    "Headers: X-IncidentDesk-Event, X-IncidentDesk-Id and Idempotency-Key (the same key on a retry), "
    "X-IncidentDesk-Timestamp, and X-IncidentDesk-Signature: `v1=` + hex HMAC-SHA256 with the webhook's "
    "secret over `<id>.<timestamp>.<body>`."
)

CALLBACKS = [
    OpenApiCallback(
        name=event,
        path="{$request.body#/url}",
        decorator=extend_schema(
            summary=f"{event}: sent to a webhook subscribed to it",
            description=_SIGNED,
            request=serializer,
            responses=_ACK,
        ),
    )
    for event, serializer in {
        webhooks.CREATED: WebhookIncidentCreatedSerializer,
        webhooks.STATE_CHANGED: WebhookStateChangedSerializer,
        webhooks.PUBLIC_COMMENT: WebhookPublicCommentSerializer,
        "incident.sla_warning|incident.sla_breached": WebhookSlaEventSerializer,
    }.items()
]
