"""Interviews API: ViewSets for reads; every write is an explicit action that calls a domain function.

The candidate's endpoints (`candidate/<token>/...`) take no account: the token in the link is the
capability, and every answer is `selectors.candidate_view`, an allow-list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from config.api import CursorPagination
from incidents.selectors import incidents_handled_by
from interviews import calibration, cases, images, lifecycle, matching, reports, selectors, services, wizard
from interviews.models import Candidate, CaseFinding, CaseVersion, Fact, Reveal, Session

from . import serializers as s

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `{field: [messages]}`"),
    403: OpenApiResponse(description="Your role in the session does not allow it"),
    404: OpenApiResponse(description="Not found, or not visible to you"),
    409: OpenApiResponse(description="`invalid_transition` (with `allowed_actions`) or `stale_version`"),
}


class CanUseLibrary(permissions.BasePermission):
    message = "The case library is for interviewers (permission interviews.view_caseversion)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.can_use_library(request.user)


class InOrder(CursorPagination):
    ordering = "id"
    page_size = 200


class ByCase(CursorPagination):
    ordering = "case_id"


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"You need the permission {perm}.")


def _input(request: Request, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------


class CaseViewSet(viewsets.GenericViewSet):
    """The case library. A case is addressed by its slug; reads show its latest version unless `?version=n`."""

    permission_classes = [permissions.IsAuthenticated, CanUseLibrary]
    serializer_class = s.CaseVersionDetailSerializer
    pagination_class = ByCase
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[CaseVersion]:
        return selectors.case_versions_visible_to(self.request.user)

    def get_object(self) -> CaseVersion:
        # DRF's OPTIONS metadata asks for the object; a case is its latest version, found by slug.
        return self._version(self.kwargs.get("slug") or "")

    def _version(self, slug: str, number: int | None = None) -> CaseVersion:
        qs = self.get_queryset().filter(case__slug=slug)
        version = qs.filter(number=number).first() if number else qs.order_by("-number").first()
        if version is None:
            raise Http404("No such case or version.")
        return version

    def _detail(self, version: CaseVersion, code: int = status.HTTP_200_OK) -> Response:
        return Response(
            s.CaseVersionDetailSerializer(version, context={"request": self.request}).data, status=code
        )

    @extend_schema(
        responses=s.CaseVersionSummarySerializer(many=True),
        parameters=[OpenApiParameter("status", str, description="draft, review, published or retired")],
    )
    def list(self, request: Request) -> Response:
        latest = (
            CaseVersion.objects.filter(case=OuterRef("case"))
            .values("case")
            .annotate(m=Max("number"))
            .values("m")
        )
        qs = self.get_queryset().filter(number=Subquery(latest))
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.CaseVersionSummarySerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("version", int)],
        responses={200: s.CaseVersionDetailSerializer, **ERRORS},
    )
    def retrieve(self, request: Request, slug: str | None = None) -> Response:
        number = request.query_params.get("version")
        return self._detail(self._version(slug or "", int(number) if number and number.isdigit() else None))

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={201: s.CaseVersionDetailSerializer, 400: ERRORS[400]}
    )
    def create(self, request: Request) -> Response:
        """Create a case from a case document (the format of `document` in a case's representation)."""
        _require(request, "interviews.change_caseversion")
        version, _ = cases.apply_case_document(request.data, actor=request.user)
        return self._detail(version, status.HTTP_201_CREATED)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: s.CaseVersionDetailSerializer, **ERRORS})
    def update(self, request: Request, slug: str | None = None) -> Response:
        """Replace the case's content with a document: in place while the latest version is an unused draft,
        else as a new version. Sending the same document again changes nothing."""
        _require(request, "interviews.change_caseversion")
        self._version(slug or "")
        doc = dict(request.data) if isinstance(request.data, dict) else request.data
        if isinstance(doc, dict):
            doc["slug"] = slug
        version, _ = cases.apply_case_document(doc, actor=request.user)
        return self._detail(version)

    @extend_schema(responses=s.CaseVersionSummarySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request: Request, slug: str | None = None) -> Response:
        versions = self.get_queryset().filter(case__slug=slug).order_by("-number")
        if not versions.exists():
            raise Http404("No such case.")
        return Response(s.CaseVersionSummarySerializer(versions, many=True).data)

    @extend_schema(request=None, responses={201: s.CaseVersionDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request: Request, slug: str | None = None) -> Response:
        """A new draft copied from the latest version."""
        _require(request, "interviews.change_caseversion")
        return self._detail(
            cases.new_version(self._version(slug or ""), actor=request.user), status.HTTP_201_CREATED
        )

    @extend_schema(
        methods=["GET"],
        parameters=[OpenApiParameter("version", int)],
        responses={(200, "image/*"): OpenApiTypes.BINARY, 404: ERRORS[404]},
    )
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": s.ImageInput},
        responses={200: s.CaseVersionDetailSerializer, **ERRORS},
    )
    @extend_schema(methods=["DELETE"], request=None, responses={200: s.CaseVersionDetailSerializer, **ERRORS})
    @action(detail=True, methods=["get", "post", "delete"], parser_classes=[MultiPartParser])
    def image(self, request: Request, slug: str | None = None) -> Response | HttpResponseBase:
        """The presentation image (GET, `?version=n`), or set (POST, multipart `image`) or remove (DELETE)
        the image of the latest version while it is a draft."""
        if request.method == "GET":
            number = request.query_params.get("version", "")
            return images.image_response(self._version(slug or "", int(number) if number.isdigit() else None))
        _require(request, "interviews.change_caseversion")
        version = self._version(slug or "")
        if request.method == "DELETE":
            return self._detail(cases.remove_image(version, actor=request.user))
        upload = request.FILES.get("image")
        if upload is None:
            raise serializers.ValidationError({"image": ["Send the image as the multipart field `image`."]})
        return self._detail(cases.set_image(version, upload=upload, actor=request.user))

    @extend_schema(
        parameters=[OpenApiParameter("version", int)],
        responses={200: s.CaseFindingSerializer(many=True), 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def findings(self, request: Request, slug: str | None = None) -> Response:
        """What the detectors find in a version drafted from an incident (`?version=n`, the latest by
        default); the version is published only once none is open."""
        number = request.query_params.get("version", "")
        version = self._version(slug or "", int(number) if number.isdigit() else None)
        findings = version.findings.select_related("version", "decided_by")
        return Response(s.CaseFindingSerializer(findings, many=True, context={"request": request}).data)

    @extend_schema(request=s.FindingDecisionInput, responses={200: s.CaseFindingSerializer, **ERRORS})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"findings/(?P<finding_id>\d+)/decide",
        url_name="finding-decide",
    )
    def decide_finding(
        self, request: Request, slug: str | None = None, finding_id: str | None = None
    ) -> Response:
        """Accept a finding (it identifies no one) or replace it everywhere in the version, one by one.
        For reviewers (permission interviews.publish_caseversion)."""
        _require(request, "interviews.publish_caseversion")
        data = _input(request, s.FindingDecisionInput)
        finding = (
            CaseFinding.objects.filter(
                pk=int(finding_id or 0), version__in=self.get_queryset().filter(case__slug=slug)
            )
            .select_related("version")
            .first()
        )
        if finding is None:
            raise Http404("No such finding.")
        decided = cases.decide_finding(
            finding, actor=request.user, decision=data["decision"], replacement=data.get("replacement")
        )
        return Response(s.CaseFindingSerializer(decided).data)

    @extend_schema(request=s.FromIncidentInput, responses={201: s.CaseVersionDetailSerializer, **ERRORS})
    @action(detail=False, methods=["post"], url_path="from-incident")
    def from_incident(self, request: Request) -> Response:
        """Draft a pseudonymised case from a closed incident you may see."""
        _require(request, "interviews.change_caseversion")
        data = _input(request, s.FromIncidentInput)
        incident = incidents_handled_by(request.user).by_reference(data["incident"]).first()
        if incident is None:
            raise Http404("No such incident.")
        version, _ = wizard.draft_case_from_incident(incident, actor=request.user)
        return self._detail(version, status.HTTP_201_CREATED)


def _case_action(name: cases.CaseAction) -> Callable[..., Response]:
    function = cases.CASE_ACTIONS[name]
    perm = (
        "interviews.publish_caseversion"
        if name in (cases.CaseAction.APPROVE, cases.CaseAction.RETIRE)
        else "interviews.change_caseversion"
    )

    def view(self: CaseViewSet, request: Request, slug: str | None = None) -> Response:
        _require(request, perm)
        data = _input(request, s.CaseActionInput)
        version = function(self._version(slug or "", data.get("version")), actor=request.user)
        return self._detail(version)

    view.__name__ = f"case_{name}"
    view.__doc__ = function.__doc__
    view = extend_schema(request=s.CaseActionInput, responses={200: s.CaseVersionDetailSerializer, **ERRORS})(
        view
    )
    return action(detail=True, methods=["post"], url_path=str(name), url_name=f"case-{name}")(view)


for _case_name in cases.CaseAction:
    setattr(CaseViewSet, f"case_{_case_name}", _case_action(_case_name))


# --------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------


class CandidateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Candidates and their data: consent is recorded on creation; `erase` deletes their personal data."""

    permission_classes = [permissions.IsAuthenticated, CanUseLibrary]
    serializer_class = s.CandidateSerializer
    queryset = Candidate.objects.select_related("user")
    lookup_value_regex = r"\d+"  # a non-numeric id is a 404 at the router, not a ValueError in the query
    pagination_class = CursorPagination

    @extend_schema(request=s.CandidateSerializer, responses={201: s.CandidateSerializer, 400: ERRORS[400]})
    def create(self, request: Request) -> Response:
        _require(request, "interviews.add_session")
        data = _input(request, s.CandidateSerializer)
        candidate = services.create_candidate(
            name=data["name"],
            email=data.get("email", ""),
            user=data.get("user"),
            consent=data.get("consent", False),
            consent_text=data.get("consent_text", ""),
            organisation=data.get("organisation"),
        )
        return Response(s.CandidateSerializer(candidate).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.CandidateSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Delete the candidate's personal data on request; anonymous statistics stay."""
        _require(request, "interviews.delete_candidate")
        candidate = services.erase_candidate(self.get_object(), actor=request.user)
        return Response(s.CandidateSerializer(candidate).data)


# --------------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------------


class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Sessions of your panels (all of them with `interviews.view_session`), and everything inside one."""

    serializer_class = s.SessionSerializer
    pagination_class = CursorPagination
    lookup_value_regex = r"\d+"  # a non-numeric id is a 404 at the router, not a ValueError in the query

    def get_queryset(self) -> QuerySet[Session]:
        qs = selectors.sessions_visible_to(self.request.user).prefetch_related("members__user")
        params = self.request.query_params
        if params.get("state"):
            qs = qs.filter(state=params["state"])
        if params.get("case"):
            qs = qs.filter(case_version__case__slug=params["case"])
        return qs

    def get_object(self) -> Session:
        session = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if session is None:
            raise Http404("No such session.")
        return session

    def _respond(self, session: Session, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=session.pk)).data, status=code)

    def _page(
        self, qs: QuerySet[Any], serializer_class: type[serializers.Serializer], **context: Any
    ) -> Response:
        paginator = InOrder()
        page = paginator.paginate_queryset(qs, self.request, view=self)
        return paginator.get_paginated_response(
            serializer_class(page, many=True, context={"request": self.request, **context}).data
        )

    @extend_schema(
        request=s.SessionCreateInput,
        responses={201: s.SessionSerializer, 400: ERRORS[400]},
        parameters=[OpenApiParameter("state", str), OpenApiParameter("case", str)],
    )
    def create(self, request: Request) -> Response:
        """Schedule a session on a published case version; the version is frozen from then on."""
        _require(request, "interviews.add_session")
        data = _input(request, s.SessionCreateInput)
        versions = selectors.case_versions_visible_to(request.user).filter(case__slug=data["case"])
        version = (
            versions.filter(number=data["version"]).first()
            if data.get("version")
            else versions.filter(status=CaseVersion.Status.PUBLISHED).first()
        )
        if version is None:
            raise serializers.ValidationError({"case": ["No such published case version."]})
        session = services.create_session(
            case_version=version,
            candidate=data["candidate"],
            lead=data.get("lead") or request.user,
            lead_rates=data["lead_rates"],
            raters=data.get("raters", []),
            observers=data.get("observers", []),
            mode=data["mode"],
            extra_time_percent=data["extra_time_percent"],
            scheduled_for=data.get("scheduled_for"),
            actor=request.user,
        )
        return self._respond(session, status.HTTP_201_CREATED)

    # The fact board and suggestions: the interviewer's side, never the candidate's.

    def _revealed(self, session: Session) -> dict[int, list[str]]:
        revealed: dict[int, list[str]] = {}
        for fact_id, level in Reveal.objects.filter(session=session).values_list("fact_id", "level"):
            revealed.setdefault(fact_id, []).append(level)
        return revealed

    @extend_schema(responses=s.FactBoardSerializer(many=True), parameters=[OpenApiParameter("q", str)])
    @action(detail=True, methods=["get"], pagination_class=None)
    def facts(self, request: Request, pk: str | None = None) -> Response:
        """The fact board: every fact of the case with what was revealed; `?q=` searches it."""
        session = self.get_object()
        qs = Fact.objects.filter(version_id=session.case_version_id).prefetch_related("requires")
        text = request.query_params.get("q", "").strip().lower()
        facts = [
            f
            for f in qs
            if not text
            or text in f.title.lower()
            or text in f.text.lower()
            or text in " ".join(f.keywords).lower()
        ]
        return Response(
            s.FactBoardSerializer(facts, many=True, context={"revealed": self._revealed(session)}).data
        )

    @extend_schema(
        responses=s.SuggestionSerializer(many=True), parameters=[OpenApiParameter("q", str, required=True)]
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def suggestions(self, request: Request, pk: str | None = None) -> Response:
        """Facts the question just typed may reach, best first. A person confirms: nothing is revealed here."""
        session = self.get_object()
        facts = {f.key: f for f in Fact.objects.filter(version_id=session.case_version_id)}
        revealed = self._revealed(session)
        found = matching.suggest_facts(request.query_params.get("q", "")[:500], facts.values())
        return Response(
            [
                {
                    "key": x.key,
                    "title": facts[x.key].title,
                    "score": x.score,
                    "reasons": list(x.reasons),
                    "revealed": sorted(revealed.get(facts[x.key].pk, [])),
                }
                for x in found
            ]
        )

    @extend_schema(
        request=s.QuestionSerializer,
        responses={200: s.QuestionSerializer(many=True), 201: s.QuestionSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def questions(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if request.method == "POST":
            data = _input(request, s.QuestionSerializer)
            question = services.record_question(session, actor=request.user, text=data["text"])
            return Response(s.QuestionSerializer(question).data, status=status.HTTP_201_CREATED)
        return self._page(session.questions.prefetch_related("reveals__fact"), s.QuestionSerializer)

    @extend_schema(request=s.AnswerInput, responses={200: s.QuestionSerializer, **ERRORS})
    @action(
        detail=True, methods=["post"], url_path=r"questions/(?P<question_id>\d+)/answer", url_name="answer"
    )
    def answer(self, request: Request, pk: str | None = None, question_id: str | None = None) -> Response:
        """Answer a question without a fact: `not_available`, or `free` with the words given."""
        session = self.get_object()
        data = _input(request, s.AnswerInput)
        question = services.answer_question(
            session, actor=request.user, question=int(question_id or 0), **data
        )
        return Response(s.QuestionSerializer(question).data)

    @extend_schema(
        request=s.RevealInput, responses={200: s.RevealSerializer(many=True), 201: s.RevealSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def reveals(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if request.method == "POST":
            data = _input(request, s.RevealInput)
            reveal = services.reveal_fact(
                session,
                actor=request.user,
                fact=data["fact"],
                level=data["level"],
                question=data.get("question"),
            )
            return Response(s.RevealSerializer(reveal).data, status=status.HTTP_201_CREATED)
        return self._page(session.reveals.select_related("fact"), s.RevealSerializer)

    @extend_schema(request=s.NoteInput, responses={200: s.NoteSerializer(many=True), 201: s.NoteSerializer})
    @action(detail=True, methods=["get", "post"])
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """Quick flags and evidence notes tagged to rubric dimensions."""
        session = self.get_object()
        if request.method == "POST":
            note = services.add_note(session, actor=request.user, **_input(request, s.NoteInput))
            return Response(s.NoteSerializer(note).data, status=status.HTTP_201_CREATED)
        return self._page(session.notes.select_related("author", "dimension"), s.NoteSerializer)

    @extend_schema(
        request=s.ProblemInput,
        responses={200: s.CandidateProblemSerializer(many=True), 201: s.CandidateProblemSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def problems(self, request: Request, pk: str | None = None) -> Response:
        """The candidate's problems (the lead may enter them for a candidate on the shared screen)."""
        session = self.get_object()
        if request.method == "POST":
            data = _input(request, s.ProblemInput)
            problem = services.add_candidate_problem(
                session, statement=data["statement"], cited_reveals=data["cited_reveals"], actor=request.user
            )
            return Response(s.CandidateProblemSerializer(problem).data, status=status.HTTP_201_CREATED)
        qs = session.candidate_problems.select_related("matched_problem", "mapped_by").prefetch_related(
            "cited_facts"
        )
        return self._page(qs, s.CandidateProblemSerializer)

    @extend_schema(request=s.ProblemMapInput, responses={200: s.CandidateProblemSerializer, **ERRORS})
    @action(
        detail=True, methods=["post"], url_path=r"problems/(?P<problem_id>\d+)/map", url_name="map-problem"
    )
    def map_problem(self, request: Request, pk: str | None = None, problem_id: str | None = None) -> Response:
        """Map a candidate problem: `matched` (with `expected`), `novel_valid` or `invalid`."""
        session = self.get_object()
        problem = services.map_problem(
            session, actor=request.user, problem=int(problem_id or 0), **_input(request, s.ProblemMapInput)
        )
        return Response(s.CandidateProblemSerializer(problem).data)

    @extend_schema(
        request=s.SolutionInput,
        responses={200: s.CandidateSolutionSerializer(many=True), 201: s.CandidateSolutionSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def solutions(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if request.method == "POST":
            solution = services.add_candidate_solution(
                session, actor=request.user, **_input(request, s.SolutionInput)
            )
            return Response(s.CandidateSolutionSerializer(solution).data, status=status.HTTP_201_CREATED)
        qs = session.candidate_solutions.select_related("matched_solution", "harmful_action", "mapped_by")
        return self._page(qs.prefetch_related("addresses"), s.CandidateSolutionSerializer)

    @extend_schema(request=s.SolutionMapInput, responses={200: s.CandidateSolutionSerializer, **ERRORS})
    @action(
        detail=True, methods=["post"], url_path=r"solutions/(?P<solution_id>\d+)/map", url_name="map-solution"
    )
    def map_solution(
        self, request: Request, pk: str | None = None, solution_id: str | None = None
    ) -> Response:
        """Map a candidate solution: `matched` (with `model`), `harmful` (with `harmful`) or `other`."""
        session = self.get_object()
        solution = services.map_solution(
            session, actor=request.user, solution=int(solution_id or 0), **_input(request, s.SolutionMapInput)
        )
        return Response(s.CandidateSolutionSerializer(solution).data)

    @extend_schema(
        request=s.RatingInput, responses={200: s.RatingSerializer(many=True), 201: s.RatingSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def ratings(self, request: Request, pk: str | None = None) -> Response:
        """Your ratings; everyone's once the session reaches consensus (raters rate blind)."""
        session = self.get_object()
        if request.method == "POST":
            data = _input(request, s.RatingInput)
            rating = services.rate(session, rater=request.user, **data)
            return Response(s.RatingSerializer(rating).data, status=status.HTTP_201_CREATED)
        return self._page(selectors.ratings_visible_to(session, request.user), s.RatingSerializer)

    @extend_schema(
        request=s.ConsensusInput,
        responses={200: s.ConsensusSerializer(many=True), 201: s.ConsensusSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def consensus(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if request.method == "POST":
            consensus = services.record_consensus(
                session, actor=request.user, **_input(request, s.ConsensusInput)
            )
            return Response(s.ConsensusSerializer(consensus).data, status=status.HTTP_201_CREATED)
        return self._page(session.consensus.select_related("dimension", "decided_by"), s.ConsensusSerializer)

    @extend_schema(responses=s.SessionEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        """The append-only session log."""
        session = self.get_object()
        return self._page(session.events.select_related("actor"), s.SessionEventSerializer)

    @extend_schema(
        parameters=[
            OpenApiParameter("export", str, description="`csv`: the timeline of questions and reveals as CSV")
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="The session report, or with `?export=csv` its timeline"
            ),
            404: ERRORS[404],
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def report(self, request: Request, pk: str | None = None) -> Response | HttpResponse:
        """Timeline of questions and reveals, coverage, problem and solution scores, rubric with evidence."""
        session = self.get_object()
        if request.query_params.get("export") == "csv":
            return _csv(reports.session_timeline_csv(session), f"session-{session.pk}.csv")
        return Response(reports.session_report(session, viewer=request.user))


def _csv(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _session_action(name: lifecycle.Action, input_class: type[s.VersionedInput]) -> Callable[..., Response]:
    function = lifecycle.ACTIONS[name]

    def view(self: SessionViewSet, request: Request, pk: str | None = None) -> Response:
        session = function(self.get_object(), actor=request.user, **_input(request, input_class))
        return self._respond(session)

    view.__name__ = f"session_{name}"
    view.__doc__ = function.__doc__
    view = extend_schema(request=input_class, responses={200: s.SessionSerializer, **ERRORS})(view)
    return action(detail=True, methods=["post"], url_path=str(name), url_name=f"session-{name}")(view)


SESSION_INPUTS: dict[lifecycle.Action, type[s.VersionedInput]] = {
    lifecycle.Action.START: s.VersionedInput,
    lifecycle.Action.ADVANCE: s.VersionedInput,
    lifecycle.Action.PAUSE: s.ReasonInput,
    lifecycle.Action.RESUME: s.VersionedInput,
    lifecycle.Action.CLOSE: s.CloseInput,
    lifecycle.Action.VOID: s.ReasonInput,
}
for _name, _input_class in SESSION_INPUTS.items():
    setattr(SessionViewSet, f"session_{_name}", _session_action(_name, _input_class))


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------


class CalibrationViewSet(viewsets.GenericViewSet):
    """Reference sessions to calibrate on: read what the candidate did, rate each dimension with evidence,
    and once every dimension is rated see the reference level and your deviation from it."""

    permission_classes = [permissions.IsAuthenticated, CanUseLibrary]
    serializer_class = s.CalibrationSessionSerializer
    pagination_class = CursorPagination
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Session]:
        mine = Q(calibration_ratings__rater_id=self.request.user.pk)
        return calibration.reference_sessions_for(self.request.user).annotate(
            rated=Count("calibration_ratings", filter=mine)
        )

    def get_object(self) -> Session:
        session = calibration.reference_sessions_for(self.request.user).filter(pk=self.kwargs["pk"]).first()
        if session is None:
            raise Http404("No such reference session.")
        return session

    def _detail(self, session: Session, code: int = status.HTTP_200_OK) -> Response:
        body = {
            "material": calibration.material(session),
            "result": calibration.result(session, self.request.user),
        }
        return Response(s.CalibrationDetailSerializer(body).data, status=code)

    @extend_schema(responses=s.CalibrationSessionSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses={200: s.CalibrationDetailSerializer, **ERRORS})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._detail(self.get_object())

    @extend_schema(request=s.RatingInput, responses={201: s.CalibrationDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def ratings(self, request: Request, pk: str | None = None) -> Response:
        """Rate one dimension (again, to change it); answers the session with your result so far."""
        session = self.get_object()
        services.rate_for_calibration(session, rater=request.user, **_input(request, s.RatingInput))
        return self._detail(session, status.HTTP_201_CREATED)


# --------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------


class ComparisonView(APIView):
    """Candidates within one case version: scores side by side, with percentiles against past sessions."""

    permission_classes = [permissions.IsAuthenticated, CanUseLibrary]

    def _version(self, request: Request) -> CaseVersion:
        slug = request.query_params.get("case", "")
        number = request.query_params.get("version", "")
        qs = selectors.case_versions_visible_to(request.user).filter(case__slug=slug)
        version = (
            qs.filter(number=int(number)).first() if number.isdigit() else qs.order_by("-number").first()
        )
        if version is None:
            raise Http404("No such case version.")
        return version

    @extend_schema(
        parameters=[
            OpenApiParameter("case", str, required=True),
            OpenApiParameter("version", int),
            OpenApiParameter("export", str, description="`csv` for CSV"),
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="One row per closed session; `?export=csv` answers the rows as CSV",
            )
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        _require(request, "interviews.view_session")
        version = self._version(request)
        rows = reports.comparison(version)
        if request.query_params.get("export") == "csv":
            return _csv(reports.rows_csv(rows), f"{version.case.slug}-v{version.number}.csv")
        return Response({"case": version.case.slug, "version": version.number, "results": rows})


class CaseAnalyticsView(ComparisonView):
    """How often and how fast each fact is found, problems that separate strong and weak candidates, overruns."""

    @extend_schema(
        parameters=[OpenApiParameter("case", str, required=True), OpenApiParameter("version", int)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Case analytics")},
    )
    def get(self, request: Request) -> Response:
        _require(request, "interviews.view_session")
        return Response(reports.case_analytics(self._version(request)))


class RaterAnalyticsView(APIView):
    """Agreement per rubric dimension and period, rater leniency, and calibration against reference sessions."""

    permission_classes = [permissions.IsAuthenticated, CanUseLibrary]

    @extend_schema(
        parameters=[OpenApiParameter("by", str, description="month (default), quarter or all")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Rater analytics")},
    )
    def get(self, request: Request) -> Response:
        _require(request, "interviews.view_session")
        by = request.query_params.get("by", "month")
        if by not in ("month", "quarter", "all"):
            raise serializers.ValidationError({"by": ["month, quarter or all."]})
        return Response(reports.rater_analytics(by=by))


# --------------------------------------------------------------------------------------------------
# The candidate
# --------------------------------------------------------------------------------------------------


class CandidateThrottle(AnonRateThrottle):
    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": "candidate", "ident": self.get_ident(request)}


class CandidateBase(APIView):
    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [CandidateThrottle]

    def session(self, token: str) -> Session:
        session = selectors.session_by_token(token)
        if session is None:
            raise Http404("No such interview.")
        return session

    def view_of(self, session: Session, code: int = status.HTTP_200_OK) -> Response:
        session.refresh_from_db()
        return Response(selectors.candidate_view(session), status=code)


class CandidateView(CandidateBase):
    """What the candidate sees: the brief, the clock, the facts revealed so far, their own statements."""

    @extend_schema(responses={200: s.CandidateViewSerializer, 404: ERRORS[404]})
    def get(self, request: Request, token: str) -> Response:
        return self.view_of(self.session(token))


class CandidateProblemsView(CandidateBase):
    @extend_schema(request=s.ProblemInput, responses={201: s.CandidateViewSerializer, **ERRORS})
    def post(self, request: Request, token: str) -> Response:
        """State a problem, citing revealed facts by the ids of their reveals."""
        session = self.session(token)
        data = _input(request, s.ProblemInput)
        services.add_candidate_problem(
            session, statement=data["statement"], cited_reveals=data["cited_reveals"], by_candidate=True
        )
        return self.view_of(session, status.HTTP_201_CREATED)


class CandidateSolutionsView(CandidateBase):
    @extend_schema(request=s.SolutionInput, responses={201: s.CandidateViewSerializer, **ERRORS})
    def post(self, request: Request, token: str) -> Response:
        """Propose a solution with its reason and rank, for problems you stated."""
        session = self.session(token)
        services.add_candidate_solution(session, by_candidate=True, **_input(request, s.SolutionInput))
        return self.view_of(session, status.HTTP_201_CREATED)


class CandidateNotepadView(CandidateBase):
    @extend_schema(request=s.NotepadInput, responses={200: s.CandidateViewSerializer, **ERRORS})
    def put(self, request: Request, token: str) -> Response:
        session = self.session(token)
        services.update_notepad(session, text=_input(request, s.NotepadInput)["text"])
        return self.view_of(session)


class CandidateImageView(CandidateBase):
    """The case's presentation image, from the moment the interview starts (as the presentation)."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, 404: ERRORS[404]})
    def get(self, request: Request, token: str) -> HttpResponseBase:
        session = self.session(token)
        if session.state == Session.State.SCHEDULED:
            raise Http404("No image yet.")
        return images.image_response(session.case_version)
