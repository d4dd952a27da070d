from __future__ import annotations

import copy
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from incidents.lifecycle import allowed_actions
from incidents.models import (
    Attachment,
    Category,
    Comment,
    Domain,
    Incident,
    Team,
    TimelineEntry,
    reference_for,
)
from incidents.selectors import (
    SLA_CLOCK_STATES,
    TARGET_STATES,
    desk_user,
    entry_data,
    incidents_handled_by,
    incidents_visible_to,
    reporting_targets,
    sla_status,
)
from incidents.timeline import Actor

User = get_user_model()
MAX_TEXT = 100_000
# A text the representation may leave null (no reporter, no parent, an actor that is the desk itself).
NULLABLE_STR = serializers.CharField(allow_null=True, read_only=True)


def _viewer(serializer: serializers.BaseSerializer) -> Any:
    request = serializer.context.get("request")
    return request.user if request is not None else None


class SlaSerializer(serializers.Serializer):
    response = serializers.ChoiceField(choices=SLA_CLOCK_STATES, help_text="`none`: no SLA target.")
    resolution = serializers.ChoiceField(choices=SLA_CLOCK_STATES, help_text="`none`: no SLA target.")


class TargetSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The reporting target, e.g. `preliminary-report`, `...-final`.")
    due_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=TARGET_STATES)


def _targets(incident: Incident) -> list[dict[str, Any]]:
    return reporting_targets(incident)


class FieldsBuiltOnce(serializers.ModelSerializer):
    # A read-only ModelSerializer whose fields are built once per class and process, not per instance.
    #
    # DRF builds a serializer's fields (47 for an incident, each a deep copy re-running its __init__) every
    # time a serializer is made, which cost more than the rest of an API create's answer. The fields built
    # once are the same objects DRF would build (a serializer made without context: none of them reads the
    # context to represent a value), walked with DRF's own loop (Serializer.to_representation); the method
    # fields call the method on the serializer at hand, which has the request.
    #
    # (Comments, not a docstring: the schema would take a docstring as the description of every subclass.)

    _plans: ClassVar[dict[type, list[tuple[str, serializers.Field, str | None]]]] = {}

    @classmethod
    def _plan(cls) -> list[tuple[str, serializers.Field, str | None]]:
        plan = FieldsBuiltOnce._plans.get(cls)
        if plan is None:
            plan = [
                (str(field.field_name), field, getattr(field, "method_name", None))
                for field in cls()._readable_fields
            ]
            FieldsBuiltOnce._plans[cls] = plan
        return plan

    def represent(self, instance: Any, only: frozenset[str] | None = None) -> dict[str, Any]:
        """Serializer.to_representation, over the fields of `only` (all when None)."""
        ret: dict[str, Any] = {}
        for name, field, method in self._plan():
            if only is not None and name not in only:
                continue
            if method is not None:
                ret[name] = getattr(self, method)(instance)
                continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check_for_none is None else field.to_representation(attribute)
        return ret


class IncidentSerializer(FieldsBuiltOnce):
    reference = serializers.CharField(read_only=True)
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    category = serializers.SlugRelatedField(slug_field="path", read_only=True, allow_null=True)
    reporter = serializers.SerializerMethodField()
    parent = serializers.SerializerMethodField()
    duplicate_of = serializers.SerializerMethodField()
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Choices that stay blank until the desk sets them: the schema says so (an empty string is valid).
    outcome = serializers.ChoiceField(choices=Incident.Outcome.choices, allow_blank=True, read_only=True)
    harm_level = serializers.ChoiceField(choices=Incident.HarmLevel.choices, allow_blank=True, read_only=True)
    hold_reason = serializers.ChoiceField(
        choices=Incident.HoldReason.choices, allow_blank=True, read_only=True
    )
    cancel_reason = serializers.ChoiceField(
        choices=Incident.CancelReason.choices, allow_blank=True, read_only=True
    )
    resolution_code = serializers.ChoiceField(
        choices=Incident.ResolutionCode.choices, allow_blank=True, read_only=True
    )
    sla = serializers.SerializerMethodField()
    targets = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "reference", "url", "title", "description", "description_html", "state", "domain", "category",
            "outcome", "harm_level", "impact", "urgency", "priority", "priority_override_reason", "channel",
            "reporter", "reporter_email", "confidential", "parent", "team", "assignee", "escalation_level",
            "reopen_count", "hold_reason", "received_at", "classified_at", "responded_at", "resolved_at",
            "closed_at", "cancelled_at", "response_due_at", "resolution_due_at", "sla", "targets", "resolution_summary",
            "cause", "measures", "resolution_code", "auto_closed", "cancel_reason", "duplicate_of", "problem",
            "reporter_confirmed_at",
            "version", "allowed_actions", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(NULLABLE_STR)
    def get_reporter(self, obj: Incident) -> str | None:
        if obj.reporter is not None:
            return obj.reporter.get_username()
        return obj.reporter_email or None

    @extend_schema_field(NULLABLE_STR)
    def get_parent(self, obj: Incident) -> str | None:
        return reference_for(obj.parent_id)

    @extend_schema_field(NULLABLE_STR)
    def get_duplicate_of(self, obj: Incident) -> str | None:
        return reference_for(obj.duplicate_of_id)

    @extend_schema_field(SlaSerializer)
    def get_sla(self, obj: Incident) -> dict[str, str]:
        return sla_status(obj)

    @extend_schema_field(TargetSerializer(many=True))
    def get_targets(self, obj: Incident) -> list[dict[str, Any]]:
        return list(TargetSerializer(_targets(obj), many=True).data)

    def get_allowed_actions(self, obj: Incident) -> list[str]:
        return allowed_actions(obj, _viewer(self))

    def get_url(self, obj: Incident) -> str:
        # reverse() once per serializer, not once per row: it is a tenth of a page's time.
        if not hasattr(self, "_url_pattern"):
            self._url_pattern = reverse("api:incident-detail", kwargs={"reference": "INC-000000"})
        return self._url_pattern.replace("INC-000000", obj.reference)

    def to_representation(self, instance: Incident) -> dict[str, Any]:
        me = desk_user(_viewer(self))
        # The reporter's view (also a responder's own report outside their teams' domains): exactly what
        # their page shows, nothing internal (team, assignee, priority, override reason, targets...), and
        # the fields it does not show are not computed either.
        data = self.represent(instance, None if me.as_responder(instance) else REPORTER_FIELDS)
        if not me.can_see_reporter(instance):
            # Confidential report: the fields are absent, not empty.
            data.pop("reporter", None)
            data.pop("reporter_email", None)
        return data


# What the reporter's own page shows (templates/incidents/track.html), and the API's reporter view.
REPORTER_FIELDS = frozenset((
    "reference", "url", "title", "description", "description_html", "state", "reporter", "reporter_email",
    "confidential", "received_at", "resolved_at", "closed_at", "resolution_summary", "cause", "measures",
    "reporter_confirmed_at", "version", "allowed_actions", "created_at", "updated_at",
))  # fmt: skip
# Absent (not empty) when the viewer may not know a confidential reporter: not required in either schema.
REPORTER_IDENTITY_FIELDS = ("reporter", "reporter_email")


class ReporterIncidentSerializer(IncidentSerializer):
    """The reporter's representation (also a responder's own report outside their teams' domains): the
    fields of REPORTER_FIELDS and nothing else. IncidentSerializer.to_representation already answers it for
    whoever sees the incident as its reporter; this class gives that answer its own schema component
    (`ReporterIncident`), so that every answer conforms to the OpenAPI document (incidents.api.schema)."""

    class Meta(IncidentSerializer.Meta):
        fields = [name for name in IncidentSerializer.Meta.fields if name in REPORTER_FIELDS]
        read_only_fields = fields


class CategoryPathField(serializers.CharField):
    """A category addressed by its slash path; resolved against the domain in `validate`."""


def resolve_category(
    path: str, domain: Domain | None, *, keep: Category | None = None
) -> tuple[Category, Domain]:
    """An active category by path (an inactive one only if it is `keep`, the incident's current one)."""
    qs = Category.objects.select_related("domain").filter(path=path.strip().strip("/"))
    qs = qs.filter(Q(active=True) | Q(pk=keep.pk)) if keep is not None else qs.filter(active=True)
    if domain is not None:
        qs = qs.filter(domain=domain)
    matches = list(qs[:2])
    if not matches:
        where = f" in domain {domain.slug}" if domain is not None else ""
        raise serializers.ValidationError({"category": [f"Unknown or inactive category {path!r}{where}."]})
    if len(matches) > 1:
        raise serializers.ValidationError(
            {"category": [f"Category {path!r} exists in several domains; give the domain."]}
        )
    return matches[0], matches[0].domain


class DeclaredFieldsOnce(serializers.Serializer):
    # An input serializer whose declared fields are deep-copied once per class and process; each instance
    # binds shallow copies of them (DRF deep-copies every declared field per instance, re-running each
    # field's __init__: a tenth of an API create's CPU).
    #
    # Safe because a declared field keeps no state of its own while validating: binding sets its name and
    # parent on the copy; its validators, choices and error messages are built in __init__ and only read;
    # a related field's queryset is cloned (`.all()`) on every lookup.
    #
    # (Comments, not a docstring: the schema would take a docstring as the description of every subclass.)

    _templates: ClassVar[dict[type, dict[str, serializers.Field]]] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        template = DeclaredFieldsOnce._templates.get(type(self))
        if template is None:
            template = copy.deepcopy(self._declared_fields)
            DeclaredFieldsOnce._templates[type(self)] = template
        return {name: _shallow_copy(field) for name, field in template.items()}


def _shallow_copy(field: serializers.Field) -> serializers.Field:
    """copy.copy of a field (no __slots__, __copy__ or __reduce__ of its own), without copy's generic protocol:
    a third of an API create's input validation."""
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


class IncidentCreateSerializer(DeclaredFieldsOnce):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False, default="")
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all(), required=False)
    category = CategoryPathField(max_length=400, required=False)
    impact = serializers.ChoiceField(choices=Incident.Impact.choices, required=False)
    urgency = serializers.ChoiceField(choices=Incident.Urgency.choices, required=False)
    outcome = serializers.ChoiceField(choices=Incident.Outcome.choices, required=False, default="")
    harm_level = serializers.ChoiceField(choices=Incident.HarmLevel.choices, required=False, default="")
    confidential = serializers.BooleanField(required=False, default=False)
    reporter_email = serializers.EmailField(required=False, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("category"):
            attrs["category"], attrs["domain"] = resolve_category(attrs["category"], attrs.get("domain"))
        me = _viewer(self)
        own = (getattr(me, "email", "") or "").lower()
        email = attrs.get("reporter_email", "").lower()
        # A signed-in reporter's mail goes to their own address; pointing it elsewhere would let anyone make
        # the desk mail a third party. (Responders may record a report for a caller.)
        if (
            email
            and email != own
            and me is not None
            and me.is_authenticated
            and not desk_user(me).is_responder
        ):
            raise serializers.ValidationError(
                {"reporter_email": ["Signed in, your reports use your own address; leave this out."]}
            )
        return attrs


class IncidentEditSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=MAX_TEXT, allow_blank=True, required=False)
    category = CategoryPathField(max_length=400, required=False)
    impact = serializers.ChoiceField(choices=Incident.Impact.choices, required=False)
    urgency = serializers.ChoiceField(choices=Incident.Urgency.choices, required=False)
    outcome = serializers.ChoiceField(choices=Incident.Outcome.choices, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "category" in attrs:
            incident: Incident = self.context["incident"]
            attrs["category"], _ = resolve_category(
                attrs["category"], incident.domain, keep=incident.category
            )
        return attrs


class VersionedInput(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Refuse with 409 if it changed."
    )


def _users() -> Any:
    return User.objects.filter(is_active=True)


class ClassifyInput(VersionedInput):
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all())
    category = CategoryPathField(max_length=400)
    impact = serializers.ChoiceField(choices=Incident.Impact.choices)
    urgency = serializers.ChoiceField(choices=Incident.Urgency.choices)
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        help_text="Default: the category's default team (required when it has none).",
    )
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), required=False, allow_null=True
    )
    outcome = serializers.ChoiceField(choices=Incident.Outcome.choices, required=False, default="")
    harm_level = serializers.ChoiceField(choices=Incident.HarmLevel.choices, required=False, default="")
    priority = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    priority_reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["category"], _ = resolve_category(attrs["category"], attrs["domain"])
        return attrs


class AcknowledgeInput(VersionedInput):
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), required=False, allow_null=True
    )


class EscalateInput(VersionedInput):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    reason = serializers.CharField(max_length=2000)
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), required=False, allow_null=True
    )


class AssignInput(VersionedInput):
    """A member of the incident's team, and/or another team that handles its domain."""

    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), required=False, allow_null=True
    )
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class HoldInput(VersionedInput):
    reason = serializers.ChoiceField(choices=Incident.HoldReason.choices)
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class ResumeInput(VersionedInput):
    pass


class ResolveInput(VersionedInput):
    summary = serializers.CharField(max_length=MAX_TEXT)


class ReopenInput(VersionedInput):
    reason = serializers.CharField(max_length=2000)


class CloseInput(VersionedInput):
    cause = serializers.CharField(max_length=MAX_TEXT)
    measures = serializers.CharField(max_length=MAX_TEXT)
    resolution_code = serializers.ChoiceField(choices=Incident.ResolutionCode.choices)


class CancelInput(VersionedInput):
    reason = serializers.ChoiceField(choices=Incident.CancelReason.choices)
    duplicate_of = serializers.CharField(
        max_length=20, required=False, help_text="Reference of the surviving incident."
    )
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)

    def validate_duplicate_of(self, value: str) -> Incident:
        visible = incidents_handled_by(self.context["request"].user)
        survivor = visible.by_reference(value).first()
        if survivor is None:
            raise serializers.ValidationError(f"No incident {value}.")
        return survivor


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "body_html", "public", "created_at"]
        read_only_fields = ["id", "author", "body_html", "created_at"]
        extra_kwargs = {"body": {"max_length": 50_000}, "public": {"default": False}}

    @extend_schema_field(NULLABLE_STR)
    def get_author(self, obj: Comment) -> str | None:
        return _actor_name(obj.author_id, obj.author, obj.incident, _viewer(self))


def _actor_name(actor_id: int | None, actor: Actor, incident: Incident, viewer: Actor) -> str | None:
    if actor_id is None or actor is None:
        return None
    if actor_id == incident.reporter_id and not desk_user(viewer).can_see_reporter(incident):
        return "reporter"
    return actor.get_username()


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField()

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "action", "actor", "public", "data", "comment", "attachment"]
        read_only_fields = fields

    @extend_schema_field(NULLABLE_STR)
    def get_actor(self, obj: TimelineEntry) -> str | None:
        return _actor_name(obj.actor_id, obj.actor, self.context["incident"], _viewer(self))

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_data(self, obj: TimelineEntry) -> dict[str, Any]:
        return entry_data(obj, self.context["incident"], _viewer(self))


class AttachmentSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "filename",
            "content_type",
            "size",
            "sha256",
            "public",
            "uploaded_by",
            "created_at",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(NULLABLE_STR)
    def get_uploaded_by(self, obj: Attachment) -> str | None:
        return _actor_name(obj.uploaded_by_id, obj.uploaded_by, self.context["incident"], _viewer(self))

    def get_download_url(self, obj: Attachment) -> str:
        return reverse(
            "api:incident-attachment-download",
            kwargs={"reference": self.context["incident"].reference, "attachment_id": obj.pk},
        )


class AttachmentUploadInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    public = serializers.BooleanField(required=False, default=True)


class SimilarIncidentSerializer(serializers.ModelSerializer):
    """A similar past incident and how it was resolved (recurrence, SPEC section 6)."""

    reference = serializers.CharField(read_only=True)
    category = serializers.SlugRelatedField(slug_field="path", read_only=True)
    similarity = serializers.FloatField(
        read_only=True, help_text="Higher is closer; not comparable across databases."
    )
    # Blank until the incident is closed (a resolved one has none yet): the schema says so.
    resolution_code = serializers.ChoiceField(
        choices=Incident.ResolutionCode.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Incident
        fields = [
            "reference", "title", "state", "category", "resolution_summary", "cause", "measures",
            "resolution_code", "resolved_at", "closed_at", "problem", "similarity",
        ]  # fmt: skip
        read_only_fields = fields


class ParentInput(VersionedInput):
    parent = serializers.CharField(
        max_length=20, allow_null=True, help_text="Reference of the major incident; null to unlink."
    )

    def validate_parent(self, value: str | None) -> Incident | None:
        if value is None:
            return None
        parent = incidents_visible_to(self.context["request"].user).by_reference(value).first()
        if parent is None:
            raise serializers.ValidationError(f"No incident {value}.")
        return parent


class SatisfactionInput(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5, help_text="1 poor .. 5 excellent.")
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class SatisfactionSerializer(serializers.Serializer):
    score = serializers.IntegerField(read_only=True)
    comment = serializers.CharField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
