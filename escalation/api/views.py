from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.deletion import ProtectedError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import CursorPagination
from escalation.models import (
    BusinessCalendar,
    EscalationPolicy,
    Schedule,
    SlaPolicy,
    WebhookEndpoint,
    new_secret,
)
from escalation.oncall import OnCallShift, team_oncall
from incidents.models import Team
from incidents.permissions import IsResponder, ResponderReadsStaffWrites

from . import serializers as s
from .webhook_payloads import CALLBACKS

User = get_user_model()


ConfigPermission = ResponderReadsStaffWrites  # responders read the configuration; admins (staff) change it


def paginated(ordering: str) -> type[CursorPagination]:
    return type(f"By{ordering.title()}", (CursorPagination,), {"ordering": ordering})


class ConfigViewSet(viewsets.ModelViewSet):
    permission_classes = [permissions.IsAuthenticated, ConfigPermission]
    lookup_field = "slug"

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().destroy(request, *args, **kwargs)
        except ProtectedError:
            return Response(
                {"detail": "It is still in use (by a policy, a step or an incident).", "code": "protected"},
                status=status.HTTP_409_CONFLICT,
            )


class CalendarViewSet(ConfigViewSet):
    queryset = BusinessCalendar.objects.all()
    serializer_class = s.CalendarSerializer
    pagination_class = paginated("slug")


class SlaPolicyViewSet(ConfigViewSet):
    queryset = SlaPolicy.objects.select_related("domain", "calendar", "escalation_policy").prefetch_related(
        "targets"
    )
    serializer_class = s.SlaPolicySerializer
    lookup_field = "pk"
    pagination_class = paginated("id")


class EscalationPolicyViewSet(ConfigViewSet):
    queryset = EscalationPolicy.objects.select_related("team").prefetch_related("steps")
    serializer_class = s.EscalationPolicySerializer
    pagination_class = paginated("slug")


class ScheduleViewSet(ConfigViewSet):
    queryset = Schedule.objects.select_related("team").prefetch_related("overrides__user")
    serializer_class = s.ScheduleSerializer
    pagination_class = paginated("slug")


class WebhookViewSet(ConfigViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = s.WebhookSerializer
    pagination_class = paginated("slug")
    permission_classes = [permissions.IsAuthenticated, permissions.IsAdminUser]

    def get_queryset(self) -> Any:
        return WebhookEndpoint.objects.select_related("owner_user", "owner_team")

    @extend_schema(callbacks=CALLBACKS)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a webhook; its secret is in this answer only. Subscribed to `events`, it is sent each
        of them about the incidents its owner may see (see the callbacks for the bodies)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hook = serializer.save()
        shown = s.WebhookSerializer(hook, context={"show_secret": True, "request": request})
        return Response(shown.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.WebhookSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, slug: str) -> Response:
        """A new secret, shown in this answer only; the old one stops signing at once (rows still to be
        delivered are signed with the new one)."""
        hook = self.get_object()
        hook.secret = new_secret()
        hook.save(update_fields=["secret"])
        return Response(s.WebhookSerializer(hook, context={"show_secret": True, "request": request}).data)


def _shift(shift: OnCallShift) -> dict[str, Any]:
    user = shift.user.get_username() if shift.user is not None else None
    return {"user": user, "start": shift.start, "end": shift.end, "override": shift.override}


class OnCallView(APIView):
    permission_classes = [permissions.IsAuthenticated, IsResponder]

    @extend_schema(responses=s.OnCallSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        """Who is on call now, and next, in each of the team's schedules."""
        team = get_object_or_404(Team, slug=slug)
        result = [
            {"schedule": oncall.schedule.slug, "now": _shift(oncall.now), "next": _shift(oncall.next)}
            for oncall in team_oncall(team, at=timezone.now())
        ]
        return Response(s.OnCallSerializer(result, many=True).data)
