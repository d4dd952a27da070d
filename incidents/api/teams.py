"""`/api/v1/teams/`: responders read; admins create and change name, tier, members, domains, manager and
escalation policy. Validation is desk_config's (TeamConfig): a file that applies is the API calls it
stands for. Taking a domain away while the team holds open incidents of it answers 409."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import changed_fields, record_change
from config.api import CursorPagination
from incidents.deskconfig import ConfigConflict, TeamConfig, plain
from incidents.models import Team

from .permissions import ReadResponderWriteAdmin
from .views import ERRORS

# The escalation app owns the policy; reached through the relation so that incidents imports nothing from it.
EscalationPolicy: Any = Team._meta.get_field("escalation_policy").related_model

CONFLICT = OpenApiResponse(description="`conflict`: the team still has open incidents of a domain removed")


class TeamSerializer(TeamConfig):
    escalation_policy = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=EscalationPolicy.objects.all(),
        allow_null=True,
        required=False,
        help_text="The escalation policy its incidents follow (its slug), or null.",
    )

    class Meta(TeamConfig.Meta):
        fields = [*TeamConfig.Meta.fields, "escalation_policy"]

    def validate_slug(self, value: str) -> str:
        taken = Team.objects.filter(slug=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"A team {value!r} already exists.")
        return value

    def validate_escalation_policy(self, value: Any) -> Any:
        if (
            value is not None
            and value.team_id is not None
            and (self.instance is None or value.team_id != self.instance.pk)
        ):
            raise serializers.ValidationError(f"{value.slug!r} is already the policy of another team.")
        return value

    def to_representation(self, instance: Team) -> dict[str, Any]:
        data = super().to_representation(instance)
        policy = getattr(instance, "escalation_policy", None)
        data["escalation_policy"] = policy.slug if policy is not None else None
        return data

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Team:
        policy = validated_data.pop("escalation_policy", None)
        team = super().create(validated_data)
        _set_policy(team, policy)
        return team

    @transaction.atomic
    def update(self, instance: Team, validated_data: dict[str, Any]) -> Team:
        missing = object()
        policy = validated_data.pop("escalation_policy", missing)
        team = super().update(instance, validated_data)
        if policy is not missing:
            _set_policy(team, policy)
        return team


def _set_policy(team: Team, policy: Any) -> None:
    EscalationPolicy.objects.filter(team=team).exclude(pk=getattr(policy, "pk", None)).update(team=None)
    if policy is not None and policy.team_id != team.pk:
        EscalationPolicy.objects.filter(pk=policy.pk).update(team=team)
    # The reverse one-to-one is cached on the instance: forget it, so the answer shows what was saved.
    team._state.fields_cache.pop("escalation_policy", None)


class TeamPagination(CursorPagination):
    ordering = "slug"


@extend_schema_view(retrieve=extend_schema(responses={200: TeamSerializer, 404: ERRORS[404]}))
class TeamViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    serializer_class = TeamSerializer
    permission_classes = [permissions.IsAuthenticated, ReadResponderWriteAdmin]
    lookup_field = "slug"
    pagination_class = TeamPagination

    def get_queryset(self) -> QuerySet[Team]:
        return Team.objects.select_related("manager", "escalation_policy").prefetch_related(
            "domains", "members"
        )

    @extend_schema(responses={201: TeamSerializer, 400: ERRORS[400]})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            team = serializer.save()
            record_change(actor=request.user, obj=team, action="create")
        return Response(self._fresh(team), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TeamSerializer, 400: ERRORS[400], 404: ERRORS[404], 409: CONFLICT})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        found = self.get_object()
        try:
            with transaction.atomic():
                # The team's row lock orders concurrent edits of one team (its members and domains are rows of
                # other tables, so the comparison below must not interleave with another edit).
                team = Team.objects.select_for_update().get(pk=found.pk)
                before = self._fresh(team)
                serializer = self.get_serializer(team, data=request.data, partial=partial)
                serializer.is_valid(raise_exception=True)
                serializer.save()
                after = self._fresh(team)
                fields = changed_fields(before, after)
                if fields:
                    record_change(actor=request.user, obj=team, action="change", fields=fields)
        except ConfigConflict as conflict:
            return Response({"detail": str(conflict), "code": "conflict"}, status=status.HTTP_409_CONFLICT)
        return Response(after)

    def _fresh(self, team: Team) -> dict[str, Any]:
        return plain(TeamSerializer(self.get_queryset().get(pk=team.pk)).data)
