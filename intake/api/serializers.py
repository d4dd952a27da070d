"""Input and output of the events endpoint, the Alertmanager adapter and the integrations API."""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

from django.core.validators import URLValidator
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from incidents.models import Category, Domain, Team

from ..models import SEVERITIES, Integration


def _web_url(**kwargs: Any) -> serializers.URLField:
    field = serializers.URLField(max_length=2000, **kwargs)
    field.validators = [v for v in field.validators if not isinstance(v, URLValidator)]
    field.validators.append(URLValidator(schemes=["http", "https"]))
    return field


class LinkSerializer(serializers.Serializer):
    href = _web_url()
    text = serializers.CharField(max_length=1024, required=False, allow_blank=True)


class ImageSerializer(serializers.Serializer):
    src = _web_url()
    href = _web_url(required=False)
    alt = serializers.CharField(max_length=1024, required=False, allow_blank=True)


class PayloadSerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=1024, trim_whitespace=True)
    source = serializers.CharField(max_length=255)
    severity = serializers.ChoiceField(choices=SEVERITIES)
    timestamp = serializers.DateTimeField(required=False, help_text="When the condition started (ISO 8601).")
    component = serializers.CharField(max_length=255, required=False, allow_blank=True)
    group = serializers.CharField(max_length=255, required=False, allow_blank=True)
    locals()["class"] = serializers.CharField(max_length=255, required=False, allow_blank=True)
    custom_details = serializers.JSONField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        values = super().to_internal_value(data)
        if values.get("timestamp") is not None:
            # Kept as text in the JSON of the alert group and the timeline, in UTC.
            values["timestamp"] = values["timestamp"].astimezone(UTC).isoformat()
        return values

    def validate_custom_details(self, value: Any) -> Any:
        # PostgreSQL's jsonb and text refuse NUL: say so here rather than fail in the database.
        if "\\u0000" in json.dumps(value):
            raise serializers.ValidationError("Must not contain NUL characters.")
        return value


class EventSerializer(serializers.Serializer):
    routing_key = serializers.CharField(
        max_length=128,
        required=False,
        help_text="The integration's key; or send it as `Authorization: Bearer <key>` or `X-Routing-Key`.",
    )
    event_action = serializers.ChoiceField(choices=["trigger", "acknowledge", "resolve"])
    dedup_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    payload = PayloadSerializer(required=False)
    client = serializers.CharField(max_length=255, required=False, allow_blank=True)
    client_url = _web_url(required=False)
    links = LinkSerializer(many=True, required=False, max_length=20)  # type: ignore[call-arg]
    images = ImageSerializer(many=True, required=False, max_length=20)  # type: ignore[call-arg]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["event_action"] == "trigger" and "payload" not in attrs:
            raise serializers.ValidationError({"payload": ["A trigger needs a payload."]})
        if attrs["event_action"] != "trigger" and not attrs.get("dedup_key"):
            raise serializers.ValidationError(
                {"dedup_key": [f"An {attrs['event_action']} event needs a dedup_key."]}
            )
        return attrs


class PartialPayloadSerializer(PayloadSerializer):
    """Acknowledge and resolve events may carry a payload with any of the fields."""

    summary = serializers.CharField(max_length=1024, required=False)
    source = serializers.CharField(max_length=255, required=False)
    severity = serializers.ChoiceField(choices=SEVERITIES, required=False)


class EventInputSerializer(EventSerializer):
    """What the view parses: the payload is checked in full for a trigger and field by field otherwise
    (EventSerializer, with the nested payload, is what the schema shows)."""

    payload = serializers.DictField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "payload" in attrs:
            kind = PayloadSerializer if attrs["event_action"] == "trigger" else PartialPayloadSerializer
            payload = kind(data=attrs["payload"])
            if not payload.is_valid():
                raise serializers.ValidationError({"payload": payload.errors})
            attrs["payload"] = dict(payload.validated_data)
        return attrs


# What EventInputSerializer accepts and gives for the trigger nearly every monitoring tool sends, checked
# without building it: DRF builds and deep-copies every field of both serializers for each event, a third of
# a dedup hit's CPU. Texts as they come (no surrounding whitespace to trim, no NUL, no surrogate), a known
# severity, a timestamp with its offset, custom_details without NUL. Anything else, every refusal included,
# goes through the serializers (plain_trigger gives None).
PLAIN_EVENT_TEXTS = {"routing_key": (128, False), "dedup_key": (255, True)}  # max length, may be blank
PLAIN_PAYLOAD_TEXTS = {
    "summary": (1024, False), "source": (255, False), "component": (255, True), "group": (255, True),
    "class": (255, True),
}  # fmt: skip
PLAIN_PAYLOAD_FIELDS = {*PLAIN_PAYLOAD_TEXTS, "severity", "timestamp", "custom_details"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_text(value: Any, max_length: int, blank: bool) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and (blank or value != "")
        and value == value.strip()
        and "\x00" not in value
        and (value.isascii() or not _SURROGATE.search(value))
    )


def plain_trigger(data: dict[str, Any]) -> dict[str, Any] | None:
    """EventInputSerializer's validated data for a trigger of that shape, or None: let the serializer decide."""
    payload = data.get("payload")
    if (
        data.get("event_action") != "trigger"
        or not isinstance(payload, dict)
        or not data.keys() <= {*PLAIN_EVENT_TEXTS, "event_action", "payload"}
        or not payload.keys() <= PLAIN_PAYLOAD_FIELDS
        or not {"summary", "source", "severity"} <= payload.keys()
        or payload["severity"] not in SEVERITIES
        or any(not _plain_text(data[k], *limits) for k, limits in PLAIN_EVENT_TEXTS.items() if k in data)
        or any(
            not _plain_text(payload[k], *limits) for k, limits in PLAIN_PAYLOAD_TEXTS.items() if k in payload
        )
    ):
        return None
    checked = dict(payload)
    if "custom_details" in payload and (
        payload["custom_details"] is None or "\\u0000" in json.dumps(payload["custom_details"])
    ):
        return None
    if "timestamp" in payload:
        try:
            at = parse_datetime(payload["timestamp"])
            if at is None or at.tzinfo is None:
                return None
            checked["timestamp"] = at.astimezone(UTC).isoformat()
        except (TypeError, ValueError, OverflowError):
            return None
    return {**data, "dedup_key": data.get("dedup_key", ""), "payload": checked}


class EventAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField()
    dedup_key = serializers.CharField()
    incident = serializers.CharField(
        allow_null=True, help_text="The incident's reference (INC- and six digits)."
    )
    message = serializers.CharField(required=False)


class AlertmanagerAlertSerializer(serializers.Serializer):
    status = serializers.RegexField(r"^(firing|resolved)$", help_text="`firing` or `resolved`.")
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    fingerprint = serializers.CharField(max_length=255)
    startsAt = serializers.CharField(required=False, allow_blank=True)
    endsAt = serializers.CharField(required=False, allow_blank=True)
    generatorURL = serializers.CharField(required=False, allow_blank=True)


class AlertmanagerSerializer(serializers.Serializer):
    """Alertmanager's webhook body (version 4); fields this adapter does not use are accepted and ignored."""

    version = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    receiver = serializers.CharField(required=False, allow_blank=True)
    externalURL = serializers.CharField(required=False, allow_blank=True)
    alerts = AlertmanagerAlertSerializer(many=True, allow_empty=False)


class AlertmanagerResultSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    event_action = serializers.CharField()
    incident = serializers.CharField(allow_null=True)
    message = serializers.CharField(required=False)


class AlertmanagerAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField()
    results = AlertmanagerResultSerializer(many=True)


class SeverityPairSerializer(serializers.Serializer):
    impact = serializers.IntegerField(min_value=1, max_value=3)
    urgency = serializers.IntegerField(min_value=1, max_value=3)


class IntegrationSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(
        slug_field="slug", queryset=Domain.objects.all(), allow_null=True, required=False
    )
    category = serializers.CharField(
        max_length=400,
        allow_blank=True,
        allow_null=True,
        required=False,
        help_text="Slash path within the domain.",
    )
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    severity_mapping = serializers.DictField(child=SeverityPairSerializer(), required=False)

    class Meta:
        model = Integration
        fields = [
            "slug",
            "name",
            "domain",
            "category",
            "team",
            "severity_mapping",
            "grouping_window_minutes",
            "rate_limit_per_minute",
            "active",
            "key_prefix",
            "key_rotated_at",
            "created_at",
        ]
        read_only_fields = ["key_prefix", "key_rotated_at", "created_at"]

    def to_representation(self, instance: Integration) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["category"] = instance.category.path if instance.category_id and instance.category else None
        return data

    def validate_severity_mapping(self, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown severities {', '.join(unknown)}; use {', '.join(SEVERITIES)}."
            )
        return {k: dict(v) for k, v in value.items()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "category" in attrs:
            # A path is unique only within a domain: resolve it against the domain sent (or kept).
            path = attrs["category"] or ""
            domain = attrs.get("domain", self.instance.domain if self.instance else None)
            if not path:
                attrs["category"] = None
            elif domain is None:
                raise serializers.ValidationError({"category": ["Give the domain of the category."]})
            else:
                category = Category.objects.filter(domain=domain, path=path.strip("/")).first()
                if category is None:
                    raise serializers.ValidationError(
                        {"category": [f"No category {path} in domain {domain.slug}."]}
                    )
                attrs["category"] = category
        instance = self.instance or Integration()
        for field, value in attrs.items():
            setattr(instance, field, value)
        try:
            instance.clean()
        except Exception as exc:
            from django.core.exceptions import ValidationError as DjangoValidationError

            if isinstance(exc, DjangoValidationError):
                raise serializers.ValidationError(exc.message_dict) from exc
            raise
        attrs["domain"] = instance.domain
        return attrs


class IntegrationWithKeySerializer(IntegrationSerializer):
    routing_key = serializers.SerializerMethodField(help_text="Shown once, on create and on rotation.")

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "routing_key"]

    def get_routing_key(self, obj: Integration) -> str:
        return self.context["routing_key"]
