"""Problem records API (`/api/v1/problems/`): reads through a ViewSet, every write an explicit action that
calls incidents.problems. Responders only; a problem of a restricted domain answers 404 to other teams."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from incidents import problems
from incidents.models import Domain, FollowUpAction, Incident, Problem, Team
from incidents.permissions import IsResponder
from incidents.selectors import incidents_visible_to, problems_visible_to

from .serializers import MAX_TEXT, resolve_category
from .views import ERRORS

User = get_user_model()


class FollowUpSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = FollowUpAction
        fields = ["id", "title", "owner", "due_date", "done_at", "created_at"]
        read_only_fields = fields


class ProblemSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    domain: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    category: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="path", read_only=True
    )
    team: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    incidents = serializers.SerializerMethodField(help_text="References of the linked incidents you may see.")
    incident_count = serializers.IntegerField(read_only=True, help_text="All linked incidents.")
    follow_ups = FollowUpSerializer(many=True, read_only=True)
    allowed_states = serializers.SerializerMethodField()

    class Meta:
        model = Problem
        fields = [
            "id", "reference", "title", "description", "state", "root_cause", "workaround", "known_error",
            "domain", "category", "team", "owner", "incidents", "incident_count", "follow_ups",
            "allowed_states", "version", "created_at", "updated_at", "resolved_at", "closed_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_incidents(self, obj: Problem) -> list[str]:
        return [incident.reference for incident in obj.visible_incidents]  # type: ignore[attr-defined]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_states(self, obj: Problem) -> list[str]:
        return sorted(problems.PROBLEM_TRANSITIONS[obj.state])


class IncidentRefsField(serializers.ListField):
    """A list of incident references, resolved against what the user may see (unknown: 400 naming the field)."""

    child = serializers.CharField(max_length=20)

    def to_internal_value(self, data: Any) -> list[Incident]:
        refs = super().to_internal_value(data)
        visible = incidents_visible_to(self.context["request"].user)
        found: list[Incident] = []
        missing: list[str] = []
        for ref in dict.fromkeys(refs):
            incident = visible.by_reference(ref).first()
            if incident is None:
                missing.append(ref)
            else:
                found.append(incident)
        if missing:
            raise serializers.ValidationError(f"No incident {', '.join(missing)}.")
        return found


class ProblemInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    root_cause = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    workaround = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )
    domain = serializers.SlugField(required=False, help_text="Only to tell categories of two domains apart.")
    category = serializers.CharField(max_length=400, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        domain_slug = attrs.pop("domain", None)
        path = attrs.get("category")
        if path:
            domain = Domain.objects.filter(slug=domain_slug).first() if domain_slug else None
            attrs["category"], _ = resolve_category(path, domain)
        return attrs


class ProblemCreateInput(ProblemInput):
    incidents = IncidentRefsField(required=False, default=list)


class ProblemEditInput(ProblemInput):
    title = serializers.CharField(max_length=200, required=False)
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Refuse with 409 if it changed."
    )


class ProblemStateInput(serializers.Serializer):
    state = serializers.ChoiceField(choices=Problem.State.choices)
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Refuse with 409 if it changed."
    )


class IncidentLinksInput(serializers.Serializer):
    incidents = IncidentRefsField(min_length=1, max_length=500)


class FollowUpInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    owner = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True))
    due_date = serializers.DateField()


class ProblemFilter(filters.FilterSet):
    state = filters.MultipleChoiceFilter(choices=Problem.State.choices)
    known_error = filters.BooleanFilter()
    team = filters.CharFilter(method="filter_team")
    category = filters.CharFilter(method="filter_category", help_text="A category path.")
    incident = filters.CharFilter(method="filter_incident", help_text="Problems linked to this reference.")
    q = filters.CharFilter(method="filter_q", max_length=200, help_text="Words of the title or root cause.")

    class Meta:
        model = Problem
        fields: list[str] = []

    def filter_team(self, qs: QuerySet[Problem], name: str, value: str) -> QuerySet[Problem]:
        return qs.filter(team__slug=value)

    def filter_category(self, qs: QuerySet[Problem], name: str, value: str) -> QuerySet[Problem]:
        return qs.filter(category__path=value.strip("/"))

    def filter_incident(self, qs: QuerySet[Problem], name: str, value: str) -> QuerySet[Problem]:
        pk = Incident.pk_from_reference(value)
        return qs.filter(incidents__pk=pk) if pk is not None else qs.none()

    def filter_q(self, qs: QuerySet[Problem], name: str, value: str) -> QuerySet[Problem]:
        return qs.filter(Q(title__icontains=value) | Q(root_cause__icontains=value))


class ProblemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProblemSerializer
    filterset_class = ProblemFilter
    permission_classes = [permissions.IsAuthenticated, IsResponder]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        user = self.request.user
        return (
            problems_visible_to(user)
            .select_related("domain", "category", "team", "owner")
            .annotate(incident_count=Count("incidents", distinct=True))
            .prefetch_related(
                Prefetch(
                    "incidents",
                    queryset=incidents_visible_to(user).only("id", "problem_id").order_by("id"),
                    to_attr="visible_incidents",
                ),
                Prefetch("follow_ups", queryset=FollowUpAction.objects.select_related("owner")),
            )
        )

    def get_object(self) -> Problem:
        problem = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if problem is None:
            raise Http404("No such problem.")
        return problem

    def _input(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context={"request": self.request})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _respond(self, problem: Problem, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=problem.pk)).data, status=status_code)

    @extend_schema(request=ProblemCreateInput, responses={201: ProblemSerializer, 400: ERRORS[400]})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        problem = problems.create_problem(actor=request.user, **self._input(ProblemCreateInput))
        return self._respond(problem, status.HTTP_201_CREATED)

    @extend_schema(request=ProblemEditInput, responses={200: ProblemSerializer, **ERRORS})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        problem = self.get_object()
        data = self._input(ProblemEditInput)
        problem = problems.edit_problem(problem, actor=request.user, **data)
        return self._respond(problem)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Delete a proposed or open problem without follow-up actions (its incidents are unlinked)."""
        problems.delete_problem(self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ProblemStateInput, responses={200: ProblemSerializer, **ERRORS})
    @action(detail=True, methods=["post"], filter_backends=[])
    def state(self, request: Request, pk: str | None = None) -> Response:
        """Move the problem to another state (proposed, open, known_error, resolved, closed)."""
        problem = problems.change_state(
            self.get_object(), actor=request.user, **self._input(ProblemStateInput)
        )
        return self._respond(problem)

    @extend_schema(request=IncidentLinksInput, responses={200: ProblemSerializer, **ERRORS})
    @action(detail=True, methods=["post"], filter_backends=[])
    def link(self, request: Request, pk: str | None = None) -> Response:
        """Link incidents (by reference) to the problem."""
        problem = self.get_object()
        problems.link_incidents(
            problem, actor=request.user, incidents=self._input(IncidentLinksInput)["incidents"]
        )
        return self._respond(problem)

    @extend_schema(request=IncidentLinksInput, responses={200: ProblemSerializer, **ERRORS})
    @action(detail=True, methods=["post"], filter_backends=[])
    def unlink(self, request: Request, pk: str | None = None) -> Response:
        """Unlink incidents (by reference) from the problem."""
        problem = self.get_object()
        problems.unlink_incidents(
            problem, actor=request.user, incidents=self._input(IncidentLinksInput)["incidents"]
        )
        return self._respond(problem)

    @extend_schema(
        request=FollowUpInput,
        responses={200: FollowUpSerializer(many=True), 201: FollowUpSerializer, **ERRORS},
    )
    @action(
        detail=True, methods=["get", "post"], url_path="follow-ups", filter_backends=[], pagination_class=None
    )
    def follow_ups(self, request: Request, pk: str | None = None) -> Response:
        """The problem's follow-up actions; POST adds one (its owner is reminded daily until it is done)."""
        problem = self.get_object()
        if request.method == "POST":
            follow_up = problems.add_follow_up(problem, actor=request.user, **self._input(FollowUpInput))
            return Response(FollowUpSerializer(follow_up).data, status=status.HTTP_201_CREATED)
        return Response(FollowUpSerializer(problem.follow_ups.all(), many=True).data)

    @extend_schema(request=None, responses={200: FollowUpSerializer, 404: ERRORS[404]})
    @action(
        detail=True, methods=["post"], url_path=r"follow-ups/(?P<follow_up_id>\d+)/done",
        url_name="follow-up-done", filter_backends=[],
    )  # fmt: skip
    def follow_up_done(
        self, request: Request, pk: str | None = None, follow_up_id: str | None = None
    ) -> Response:
        """Mark a follow-up action done; reminders stop."""
        follow_up = self.get_object().follow_ups.filter(pk=int(follow_up_id or 0)).first()
        if follow_up is None:
            raise Http404("No such follow-up action.")
        return Response(FollowUpSerializer(problems.complete_follow_up(follow_up, actor=request.user)).data)
