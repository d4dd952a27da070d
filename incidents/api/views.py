"""Incident API: ViewSets for reads; every write is an explicit action that calls a domain function."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import CursorPagination, JSONParser, StrictOrderingFilter
from incidents import audit, export, hooks, lifecycle, major, selectors, services
from incidents.models import Attachment, AuditEvent, Incident
from incidents.permissions import IsResponder
from incidents.selectors import desk_user

from . import serializers as s
from .filters import IncidentFilter
from .schema import INCIDENT_RESPONSE, incident_response


class ChronologicalPagination(CursorPagination):
    ordering = "at"


class CommentPagination(CursorPagination):
    ordering = "created_at"


@functools.cache
def _no_clocks() -> Any:
    """An empty set of SLA clocks, evaluated, as a prefetch of none leaves it: one per process, shared by every
    new incident's answer (nothing changes it; a filter on it makes a new, still empty set)."""
    none: Any = Incident._meta.get_field("sla_clocks").related_model._default_manager.none()
    none._result_cache, none._prefetch_done = [], True
    return none


ERRORS = {
    400: OpenApiResponse(description="Invalid input: `{field: [messages]}`"),
    404: OpenApiResponse(description="Not found, or not visible to you"),
    409: OpenApiResponse(description="`invalid_transition` (with `allowed_actions`) or `stale_version`"),
}


@extend_schema_view(
    list=extend_schema(responses=incident_response(many=True)),
    retrieve=extend_schema(responses={200: INCIDENT_RESPONSE, 404: ERRORS[404]}),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.IncidentSerializer
    filterset_class = IncidentFilter
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = ["id", "created_at", "updated_at", "received_at", "priority", "state"]
    ordering = ["-id"]
    lookup_field = "reference"
    lookup_value_regex = r"[A-Za-z]{3}-\d+"
    parser_classes = [
        JSONParser,
        FormParser,
        MultiPartParser,
    ]  # JSONParser: config.api's (deep JSON is a 400)

    def get_queryset(self) -> Any:
        qs = selectors.incident_list(self.request.user)
        # A page of incidents reads their reporting targets in one query (a detail reads its own).
        return qs.prefetch_related("sla_clocks") if self.action == "list" else qs

    def get_object(self) -> Incident:
        incident = self.get_queryset().by_reference(self.kwargs["reference"]).first()
        if incident is None:
            raise Http404("No such incident.")
        what = (
            AuditEvent.What.VIEW
            if self.request.method in permissions.SAFE_METHODS
            else AuditEvent.What.CHANGE
        )
        audit.note(self.request.user, [incident], what=what, detail=f"{self.request.method} {self.action}")
        return incident

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if self.action == "list" and page is not None:
            audit.note(self.request.user, page, what=AuditEvent.What.VIEW, detail="GET list")
        return page

    def _input(self, serializer_class: type[serializers.Serializer], **context: Any) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context={"request": self.request, **context})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _respond(self, incident: Incident, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=incident.pk)
        return Response(self.get_serializer(fresh).data, status=status_code)

    @extend_schema(request=s.IncidentCreateSerializer, responses={201: INCIDENT_RESPONSE, 400: ERRORS[400]})
    def create(self, request: Request) -> Response:
        data = self._input(s.IncidentCreateSerializer)
        # Under the configuration stamp the token lookup read (incidents.api.authentication): the receivers
        # of `created` do not read again which webhooks hear of it.
        with hooks.configuration(getattr(request.auth, "config_token", None)):
            incident = services.create_incident(reporter=request.user, channel=Incident.Channel.API, **data)
        # The response is built from the object in hand: it holds every column it was inserted with, and
        # its relations are the objects validation resolved (no re-read; tests/incidents/test_create_queries).
        # A reported incident has no SLA clock yet (they start at classification), so its targets are known
        # to be none without reading them.
        incident._prefetched_objects_cache = {"sla_clocks": _no_clocks()}  # type: ignore[attr-defined]
        return Response(self.get_serializer(incident).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.IncidentEditSerializer, responses={200: INCIDENT_RESPONSE, **ERRORS})
    def partial_update(self, request: Request, reference: str | None = None) -> Response:
        incident = self.get_object()
        data = self._input(s.IncidentEditSerializer, incident=incident)
        incident = services.edit_incident(incident, actor=request.user, **data)
        return self._respond(incident)

    @extend_schema(
        request=s.CommentSerializer, responses={200: s.CommentSerializer(many=True), 201: s.CommentSerializer}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=CommentPagination, filter_backends=[])
    def comments(self, request: Request, reference: str | None = None) -> Response:
        incident = self.get_object()
        context = {"request": request}
        if request.method == "POST":
            data = self._input(s.CommentSerializer)
            comment = services.add_comment(
                incident, author=request.user, body=data["body"], public=data["public"]
            )
            return Response(
                s.CommentSerializer(comment, context=context).data, status=status.HTTP_201_CREATED
            )
        comments = incident.comments.select_related("author", "incident")
        if not desk_user(request.user).as_responder(incident):
            comments = comments.filter(public=True)
        page = self.paginate_queryset(comments)
        return self.get_paginated_response(s.CommentSerializer(page, many=True, context=context).data)

    @extend_schema(responses=s.TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=ChronologicalPagination, filter_backends=[])
    def timeline(self, request: Request, reference: str | None = None) -> Response:
        incident = self.get_object()
        page = self.paginate_queryset(selectors.timeline_for(incident, request.user))
        context = {"request": request, "incident": incident}
        return self.get_paginated_response(s.TimelineEntrySerializer(page, many=True, context=context).data)

    @extend_schema(
        request={"multipart/form-data": s.AttachmentUploadInput},
        responses={200: s.AttachmentSerializer(many=True), 201: s.AttachmentSerializer, 400: ERRORS[400]},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=CommentPagination, filter_backends=[])
    def attachments(self, request: Request, reference: str | None = None) -> Response:
        incident = self.get_object()
        context = {"request": request, "incident": incident}
        if request.method == "POST":
            data = self._input(s.AttachmentUploadInput)
            attachment = services.add_attachment(
                incident, uploaded_by=request.user, upload=data["file"], public=data["public"]
            )
            return Response(
                s.AttachmentSerializer(attachment, context=context).data, status=status.HTTP_201_CREATED
            )
        page = self.paginate_queryset(self._attachments(incident))
        return self.get_paginated_response(s.AttachmentSerializer(page, many=True, context=context).data)

    def _attachments(self, incident: Incident) -> Any:
        qs = Attachment.objects.filter(incident=incident).select_related("uploaded_by")
        return qs if desk_user(self.request.user).as_responder(incident) else qs.filter(public=True)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The file"),
            404: ERRORS[404],
        }
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_id>\d+)",
        url_name="attachment-download",
        filter_backends=[],
    )
    def download(
        self, request: Request, reference: str | None = None, attachment_id: str | None = None
    ) -> FileResponse:
        incident = self.get_object()
        attachment = self._attachments(incident).filter(pk=attachment_id).first()
        if attachment is None:
            raise Http404("No such attachment.")
        response = FileResponse(
            attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
            content_type="application/octet-stream",
        )  # fmt: skip
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="1 to 20; 5 by default.")],
        responses={200: s.SimilarIncidentSerializer(many=True), 400: ERRORS[400], 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def similar(self, request: Request, reference: str | None = None) -> Response:
        """Similar past incidents (resolved or closed, visible to you) with how they were resolved."""
        incident = self.get_object()
        raw = request.query_params.get("limit", "5")
        if not raw.isdigit() or not 1 <= int(raw) <= 20:
            raise serializers.ValidationError({"limit": ["A whole number from 1 to 20."]})
        found = selectors.similar_incidents(incident, request.user, limit=int(raw))
        return Response(s.SimilarIncidentSerializer(found, many=True).data)

    @extend_schema(request=s.VersionedInput, responses={200: INCIDENT_RESPONSE, **ERRORS})
    @action(detail=True, methods=["post"], filter_backends=[])
    def confirm(self, request: Request, reference: str | None = None) -> Response:
        """The reporter confirms that the resolution fixed it (only in `resolved`; it does not close)."""
        incident = lifecycle.confirm_resolution(
            self.get_object(), actor=request.user, **self._input(s.VersionedInput)
        )
        return self._respond(incident)

    @extend_schema(request=s.SatisfactionInput, responses={200: s.SatisfactionSerializer, **ERRORS})
    @action(detail=True, methods=["post"], filter_backends=[])
    def rate(self, request: Request, reference: str | None = None) -> Response:
        """The reporter rates the service on a closed incident (the last rating counts)."""
        incident = self.get_object()
        if incident.reporter_id != request.user.pk:
            raise PermissionDenied("Only the reporter rates the service.")
        rating = services.rate_incident(incident, **self._input(s.SatisfactionInput))
        return Response(s.SatisfactionSerializer(rating).data)

    @extend_schema(request=s.ParentInput, responses={200: INCIDENT_RESPONSE, **ERRORS})
    @action(detail=True, methods=["post"], url_path="parent", url_name="parent", filter_backends=[])
    def set_parent(self, request: Request, reference: str | None = None) -> Response:
        """Make this incident a child of a major incident (or, with null, stand on its own again)."""
        incident = major.set_parent(self.get_object(), actor=request.user, **self._input(s.ParentInput))
        return self._respond(incident)


def _action_view(name: lifecycle.Action, input_class: type[s.VersionedInput]) -> Callable[..., Response]:
    domain_function = lifecycle.ACTIONS[name]

    def view(self: IncidentViewSet, request: Request, reference: str | None = None) -> Response:
        incident = self.get_object()
        incident = domain_function(incident, actor=request.user, **self._input(input_class))
        return self._respond(incident)

    view.__name__ = str(name)
    view.__doc__ = domain_function.__doc__
    routed = action(detail=True, methods=["post"], url_path=str(name), filter_backends=[])(view)
    return extend_schema(request=input_class, responses={200: INCIDENT_RESPONSE, **ERRORS})(routed)


ACTION_INPUTS: dict[lifecycle.Action, type[s.VersionedInput]] = {
    lifecycle.Action.CLASSIFY: s.ClassifyInput,
    lifecycle.Action.ACKNOWLEDGE: s.AcknowledgeInput,
    lifecycle.Action.ESCALATE: s.EscalateInput,
    lifecycle.Action.HOLD: s.HoldInput,
    lifecycle.Action.RESUME: s.ResumeInput,
    lifecycle.Action.RESOLVE: s.ResolveInput,
    lifecycle.Action.REOPEN: s.ReopenInput,
    lifecycle.Action.CLOSE: s.CloseInput,
    lifecycle.Action.CANCEL: s.CancelInput,
    lifecycle.Action.ASSIGN: s.AssignInput,
}
# One route per action of the transition table: `POST /api/v1/incidents/{ref}/{action}/`.
for _name in lifecycle.TRANSITIONS:
    setattr(IncidentViewSet, str(_name), _action_view(_name, ACTION_INPUTS[_name]))


class CSVRenderer(renderers.BaseRenderer):
    """Lets a client ask for `Accept: text/csv`; the CSV itself is streamed by the view, not rendered."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return renderers.JSONRenderer().render(data)  # only errors get here


class IncidentExportView(generics.GenericAPIView):
    """`GET /api/v1/reports/incidents.csv`: the incident list as CSV, with the list's filters and ordering.

    Responders only. Streamed through a server-side cursor, so a million rows never sit in memory;
    the columns are those of incidents.export.COLUMNS.
    """

    permission_classes = [permissions.IsAuthenticated, IsResponder]
    filterset_class = IncidentFilter
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    ordering_fields = IncidentViewSet.ordering_fields
    ordering = ["-id"]
    pagination_class = None
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def get_queryset(self) -> Any:
        return selectors.incidents_handled_by(self.request.user)

    @extend_schema(
        operation_id="reports_incidents_csv",
        filters=True,
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per incident"),
            400: ERRORS[400],
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        qs = self.filter_queryset(self.get_queryset())
        audit.note_handled(request.user, qs, detail="GET export")
        response = StreamingHttpResponse(
            export.stream_csv(qs, desk_user(request.user)), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="incidents-{stamp}.csv"'
        return response
