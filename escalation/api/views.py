from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.deletion import ProtectedError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import changed_fields, record_change
from config.api import CursorPagination
from escalation.filings import file_report
from escalation.models import (
    AutoAssign,
    BusinessCalendar,
    EscalationPolicy,
    Schedule,
    SlaPolicy,
    WebhookEndpoint,
    new_secret,
)
from escalation.oncall import OnCallShift, team_oncall
from incidents.deskconfig import plain
from incidents.models import Team
from incidents.permissions import IsResponder, ResponderReadsStaffWrites
from incidents.selectors import desk_user, incidents_visible_to

from . import serializers as s
from .webhook_payloads import CALLBACKS

User = get_user_model()


ConfigPermission = ResponderReadsStaffWrites  # responders read the configuration; admins (staff) change it


def paginated(ordering: str) -> type[CursorPagination]:
    return type(f"By{ordering.title()}", (CursorPagination,), {"ordering": ordering})


class ConfigViewSet(viewsets.ModelViewSet):
    """Every write leaves its audit row (accounts.audit) in the transaction that makes it."""

    permission_classes = [permissions.IsAuthenticated, ConfigPermission]
    lookup_field = "slug"

    def perform_create(self, serializer: Any) -> None:
        with transaction.atomic():
            record_change(actor=self.request.user, obj=serializer.save(), action="create")

    def perform_update(self, serializer: Any) -> None:
        before = plain(self.get_serializer(serializer.instance).data)
        with transaction.atomic():
            saved = serializer.save()
            fields = changed_fields(before, plain(self.get_serializer(saved).data))
            if fields:
                record_change(actor=self.request.user, obj=saved, action="change", fields=fields)

    def perform_destroy(self, instance: Any) -> None:
        with transaction.atomic():  # refused (still in use): the audit row goes with it
            record_change(actor=self.request.user, obj=instance, action="delete")
            instance.delete()

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
        self.perform_create(serializer)
        hook = serializer.instance
        shown = s.WebhookSerializer(hook, context={"show_secret": True, "request": request})
        return Response(shown.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.WebhookSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, slug: str) -> Response:
        """A new secret, shown in this answer only; the old one stops signing at once (rows still to be
        delivered are signed with the new one)."""
        hook = self.get_object()
        with transaction.atomic():
            hook.secret = new_secret()
            hook.save(update_fields=["secret"])
            record_change(actor=request.user, obj=hook, action="change", fields=["secret"])
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


class FileReportView(APIView):
    """The reports filed with an authority for an incident's reporting targets (`targets`), and filing one.

    Filing marks the target met (or breached, if late) and is recorded in the timeline. The incident's team
    and the privacy officer may file; filing again with the same reference changes nothing."""

    permission_classes = [permissions.IsAuthenticated]

    def _incident(self, request: Request, reference: str) -> Any:
        incident = incidents_visible_to(request.user).by_reference(reference).first()
        if incident is None:
            raise Http404("No such incident.")
        return incident

    @extend_schema(
        responses={
            200: s.ReportFilingSerializer(many=True),
            404: OpenApiResponse(
                description="Not found, not visible to you, or not yours to read as a responder"
            ),
        }
    )
    def get(self, request: Request, reference: str) -> Response:
        incident = self._incident(request, reference)
        if not desk_user(request.user).as_responder(incident):
            # Who filed and the internal note are the desk's (the console shows them to responders only).
            raise Http404("No such incident.")
        filings = incident.report_filings.select_related("filed_by")
        return Response(s.ReportFilingSerializer(filings, many=True).data)

    @extend_schema(
        request=s.FileReportInput,
        responses={
            201: s.ReportFilingSerializer,
            400: OpenApiResponse(description="A field is invalid (named)"),
            403: OpenApiResponse(description="Only the incident's team and the privacy officer file"),
            404: OpenApiResponse(description="Not found, or not visible to you"),
            409: OpenApiResponse(description="That target's report was filed under another reference"),
        },
    )
    def post(self, request: Request, reference: str) -> Response:
        incident = self._incident(request, reference)
        data = s.FileReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        filing = file_report(incident, actor=request.user, **data.validated_data)
        return Response(s.ReportFilingSerializer(filing).data, status=status.HTTP_201_CREATED)


class AutoAssignView(APIView):
    """How the team's newly classified and escalated-to incidents get an assignee. Responders read it,
    admins (staff) change it."""

    permission_classes = [permissions.IsAuthenticated, ConfigPermission]

    @extend_schema(responses={200: s.AutoAssignSerializer, 404: OpenApiResponse(description="No such team")})
    def get(self, request: Request, slug: str) -> Response:
        team = get_object_or_404(Team, slug=slug)
        rule = AutoAssign.objects.filter(team=team).first()
        return Response({"mode": rule.mode if rule is not None else AutoAssign.Mode.OFF})

    @extend_schema(
        request=s.AutoAssignSerializer,
        responses={200: s.AutoAssignSerializer, 400: OpenApiResponse(description="`mode` is invalid")},
    )
    def put(self, request: Request, slug: str) -> Response:
        team = get_object_or_404(Team, slug=slug)
        data = s.AutoAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        AutoAssign.objects.update_or_create(team=team, defaults={"mode": data.validated_data["mode"]})
        return Response(data.validated_data)
