from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers

from escalation import webhooks
from escalation.models import (
    AutoAssign,
    BusinessCalendar,
    EscalationPolicy,
    EscalationStep,
    ReportFiling,
    Schedule,
    ScheduleMember,
    ScheduleOverride,
    SlaPolicy,
    SlaTarget,
    WebhookEndpoint,
)
from incidents.models import Domain, Team

User = get_user_model()


def _full_clean(instance: Any, exclude: list[str] | None = None) -> None:
    """Model validation as a 400 naming the field, before anything is saved."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from exc


class CleanModelSerializer(serializers.ModelSerializer):
    """Runs the model's own validation (clean) on the would-be instance, so that the API refuses exactly
    what the admin and the config file refuse, with a 400 naming the field."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        model: Any = self.Meta.model
        relations = {f.name for f in model._meta.many_to_many}
        values = {k: v for k, v in attrs.items() if k not in relations}
        probe = model(**{**self._current(model, values), **values})
        if self.instance is not None:
            probe.pk = self.instance.pk
        _full_clean(probe, exclude=self._exclude_from_clean())
        for field in ("weekly_hours", "extra_holidays"):
            if field in attrs:
                attrs[field] = getattr(probe, field)  # normalised by clean()
        return attrs

    def _current(self, model: Any, values: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None:
            return {}
        return {
            f.attname: getattr(self.instance, f.attname)
            for f in model._meta.concrete_fields
            if not f.primary_key and f.name not in values
        }

    def _exclude_from_clean(self) -> list[str]:
        return []


class CalendarSerializer(CleanModelSerializer):
    class Meta:
        model = BusinessCalendar
        fields = [
            "slug", "name", "time_zone", "always_open", "weekly_hours", "holiday_country", "holiday_subdivision",
            "extra_holidays",
        ]  # fmt: skip


class SlaTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = SlaTarget
        fields = [
            "slug",
            "name",
            "minutes",
            "final_minutes",
            "business_time",
            "harm_levels",
            "category_prefix",
        ]
        extra_kwargs = {"minutes": {"min_value": 1}, "final_minutes": {"min_value": 1}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        final, minutes = attrs.get("final_minutes"), attrs.get("minutes")
        if final is not None and minutes is not None and final <= minutes:
            raise serializers.ValidationError(
                {"final_minutes": ["The final report is due after the preliminary one."]}
            )
        return attrs


class SlaPolicySerializer(CleanModelSerializer):
    domain = serializers.SlugRelatedField(
        slug_field="slug", queryset=Domain.objects.all(), allow_null=True, required=False
    )
    calendar = serializers.SlugRelatedField(
        slug_field="slug", queryset=BusinessCalendar.objects.all(), allow_null=True, required=False
    )
    escalation_policy = serializers.SlugRelatedField(
        slug_field="slug", queryset=EscalationPolicy.objects.all(), allow_null=True, required=False
    )
    targets = SlaTargetSerializer(many=True, required=False)

    class Meta:
        model = SlaPolicy
        fields = [
            "id", "name", "priority", "domain", "calendar", "response_minutes", "resolution_minutes",
            "warning_percent", "escalation_policy", "active", "targets",
        ]  # fmt: skip
        extra_kwargs = {
            "response_minutes": {"min_value": 1},
            "resolution_minutes": {"min_value": 1},
            "warning_percent": {"min_value": 1, "max_value": 99},
            "priority": {"min_value": 1, "max_value": 5},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        targets = attrs.pop("targets", None)
        attrs = super().validate(attrs)
        if targets is not None:
            attrs["targets"] = targets
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> SlaPolicy:
        targets = validated_data.pop("targets", [])
        policy = SlaPolicy.objects.create(**validated_data)
        for target in targets:
            SlaTarget.objects.create(policy=policy, **target)
        return policy

    @transaction.atomic
    def update(self, instance: SlaPolicy, validated_data: dict[str, Any]) -> SlaPolicy:
        targets = validated_data.pop("targets", None)
        instance = super().update(instance, validated_data)
        if targets is not None:
            instance.targets.all().delete()
            for target in targets:
                SlaTarget.objects.create(policy=instance, **target)
        return instance


class StepSerializer(serializers.ModelSerializer):
    notify_team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    reassign_team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    notify_user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), allow_null=True, required=False
    )
    notify_schedule = serializers.SlugRelatedField(
        slug_field="slug", queryset=Schedule.objects.all(), allow_null=True, required=False
    )
    notify_webhook = serializers.SlugRelatedField(
        slug_field="slug", queryset=WebhookEndpoint.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = EscalationStep
        fields = [
            "trigger", "sla_kind", "share_percent", "delay_minutes", "notify_team", "notify_user", "notify_schedule",
            "notify_email", "notify_webhook", "notify_manager", "reassign_team", "repeat_count", "repeat_minutes",
        ]  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _full_clean(EscalationStep(**attrs), exclude=["policy", "position"])
        return attrs


class EscalationPolicySerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    steps = StepSerializer(many=True)

    class Meta:
        model = EscalationPolicy
        fields = ["slug", "name", "team", "steps"]

    def validate_steps(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not steps:
            raise serializers.ValidationError("A policy needs at least one step.")
        return steps

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> EscalationPolicy:
        steps = validated_data.pop("steps")
        policy = EscalationPolicy.objects.create(**validated_data)
        self._write_steps(policy, steps)
        return policy

    @transaction.atomic
    def update(self, instance: EscalationPolicy, validated_data: dict[str, Any]) -> EscalationPolicy:
        steps = validated_data.pop("steps", None)
        instance = super().update(instance, validated_data)
        if steps is not None:
            instance.steps.all().delete()  # running escalations keep their own copy
            self._write_steps(instance, steps)
        return instance

    def _write_steps(self, policy: EscalationPolicy, steps: list[dict[str, Any]]) -> None:
        for position, step in enumerate(steps, start=1):
            EscalationStep.objects.create(policy=policy, position=position, **step)


class OverrideSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True))

    class Meta:
        model = ScheduleOverride
        fields = ["user", "start", "end", "reason"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["The end must be after the start."]})
        return attrs


class ScheduleSerializer(CleanModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    members = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), many=True, source="member_users"
    )
    overrides = OverrideSerializer(many=True, required=False)

    class Meta:
        model = Schedule
        fields = ["slug", "name", "team", "time_zone", "start", "shift_length", "members", "overrides"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        members, overrides = attrs.pop("member_users", None), attrs.pop("overrides", None)
        attrs = super().validate(attrs)
        if members is not None:
            if not members:
                raise serializers.ValidationError({"members": ["A schedule needs at least one member."]})
            attrs["member_users"] = members
        if overrides is not None:
            attrs["overrides"] = overrides
        return attrs

    def to_representation(self, instance: Schedule) -> dict[str, Any]:
        instance.member_users = [m.user for m in instance.members.select_related("user").order_by("position")]  # type: ignore[attr-defined]
        return super().to_representation(instance)

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Schedule:
        members, overrides = validated_data.pop("member_users"), validated_data.pop("overrides", [])
        schedule = Schedule.objects.create(**validated_data)
        self._write(schedule, members, overrides)
        return schedule

    @transaction.atomic
    def update(self, instance: Schedule, validated_data: dict[str, Any]) -> Schedule:
        members, overrides = validated_data.pop("member_users", None), validated_data.pop("overrides", None)
        instance = super().update(instance, validated_data)
        self._write(instance, members, overrides)
        return instance

    def _write(
        self, schedule: Schedule, members: list[Any] | None, overrides: list[dict[str, Any]] | None
    ) -> None:
        if members is not None:
            schedule.members.all().delete()
            for position, user in enumerate(members):
                ScheduleMember.objects.create(schedule=schedule, user=user, position=position)
        if overrides is not None:
            schedule.overrides.all().delete()
            for override in overrides:
                ScheduleOverride.objects.create(schedule=schedule, **override)


class WebhookSerializer(CleanModelSerializer):
    secret = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="The signing secret: in the answer that creates the webhook or rotates it, null elsewhere.",
    )  # fmt: skip
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=webhooks.EVENTS), required=False, allow_empty=True,
        help_text="Incident events it is sent (escalation steps may target it whatever these are).",
    )  # fmt: skip
    owner_user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False, allow_null=True,
        help_text="It carries only incidents this user may see.",
    )  # fmt: skip
    owner_team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True,
        help_text="It carries only incidents this team may see.",
    )  # fmt: skip

    class Meta:
        model = WebhookEndpoint
        fields = ["slug", "name", "url", "active", "events", "owner_user", "owner_team", "secret"]
        read_only_fields = ["secret"]

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def _exclude_from_clean(self) -> list[str]:
        return ["secret"]

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("show_secret"):
            data["secret"] = None  # shown once, when created
        return data


class ShiftSerializer(serializers.Serializer):
    user = serializers.CharField(allow_null=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    override = serializers.BooleanField()


class OnCallSerializer(serializers.Serializer):
    schedule = serializers.CharField()
    now = ShiftSerializer()
    next = ShiftSerializer()


class FileReportInput(serializers.Serializer):
    target = serializers.CharField(max_length=60, help_text="The reporting target's name, as in `targets`.")
    reference = serializers.CharField(max_length=200, help_text="The authority's reference for the report.")
    filed_at = serializers.DateTimeField(required=False, help_text="When it was filed; default now.")
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class ReportFilingSerializer(serializers.ModelSerializer):
    filed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReportFiling
        fields = ["target", "reference", "filed_by", "filed_at", "note", "created_at"]
        read_only_fields = fields


class AutoAssignSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=AutoAssign.Mode.choices,
        help_text="off; round_robin: qualified members in turn; least_loaded: the qualified member with the "
        "fewest open incidents.",
    )
