"""Representations and inputs of the interviews API. Every write goes through a domain function."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from incidents.models import Domain
from interviews import cases, lifecycle, selectors
from interviews.models import (
    Candidate,
    CandidateProblem,
    CandidateSolution,
    CaseFinding,
    CaseVersion,
    ConsensusRating,
    Fact,
    Note,
    Question,
    Rating,
    Reveal,
    Session,
    SessionEvent,
    SessionMember,
)

User = get_user_model()
TEXT = 20_000


def _users() -> Any:
    return User.objects.filter(is_active=True)


def plain_choice(choices: list[tuple[str, Any]], **kwargs: Any) -> serializers.CharField:
    """A choice documented in words, not as an enum: names such as `state` and `verdict` already name other
    enums in the schema. The domain function checks the value."""
    values = ", ".join(value or "''" for value, _ in choices)
    return serializers.CharField(max_length=30, help_text=f"One of: {values}.", **kwargs)


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------


class CaseVersionSummarySerializer(serializers.ModelSerializer):
    slug = serializers.CharField(source="case.slug")
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rubric = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    frozen = serializers.BooleanField(source="is_frozen")
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = CaseVersion
        fields = [
            "slug", "number", "status", "title", "domain", "tags", "difficulty", "target_role", "rubric",
            "frozen", "created_at", "submitted_at", "published_at", "retired_at", "allowed_actions",
        ]  # fmt: skip
        read_only_fields = fields

    def get_allowed_actions(self, obj: CaseVersion) -> list[str]:
        return cases.case_actions(obj)


class CaseFindingSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    suggestion = serializers.SerializerMethodField(help_text="What `replace` uses without a replacement")

    class Meta:
        model = CaseFinding
        fields = [
            "id", "kind", "text", "locations", "certain", "status", "replacement", "suggestion",
            "decided_by", "decided_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_suggestion(self, obj: CaseFinding) -> str | None:
        if obj.status != CaseFinding.Status.OPEN:
            return None
        # The version's texts are read once per response, not once per finding.
        used: dict[int, str] = self.context.setdefault("used_text", {})  # type: ignore[attr-defined]
        if obj.version_id not in used:
            used[obj.version_id] = cases.used_text(obj.version)
        return cases.suggested_replacement(obj, used=used[obj.version_id])


class FindingDecisionInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[str(d) for d in cases.FindingDecision])
    replacement = serializers.CharField(
        max_length=300,
        required=False,
        help_text="For `replace`: the text that takes the finding's place everywhere in the version; "
        "the suggested pseudonym without it.",
    )


class CaseVersionDetailSerializer(CaseVersionSummarySerializer):
    document = serializers.SerializerMethodField()
    source_incident = serializers.SerializerMethodField()
    detector_findings = serializers.SerializerMethodField()
    findings = CaseFindingSerializer(many=True, read_only=True)
    publication_problems = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField(help_text="The presentation image's URL, or null")

    class Meta(CaseVersionSummarySerializer.Meta):
        fields = [
            *CaseVersionSummarySerializer.Meta.fields,
            "image",
            "source_incident",
            "pseudonyms",
            "document",
            "detector_findings",
            "findings",
            "publication_problems",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_document(self, obj: CaseVersion) -> dict[str, Any]:
        return cases.case_document(obj)

    @extend_schema_field(OpenApiTypes.STR)
    def get_image(self, obj: CaseVersion) -> str | None:
        if not obj.image:
            return None
        return reverse("api:interview-case-image", kwargs={"slug": obj.case.slug}) + f"?version={obj.number}"

    @extend_schema_field(OpenApiTypes.STR)
    def get_source_incident(self, obj: CaseVersion) -> str | None:
        request = self.context.get("request")
        if obj.source_incident is None or not selectors.sees_source_incident(
            obj, getattr(request, "user", None)
        ):
            return None
        return obj.source_incident.reference

    def get_detector_findings(self, obj: CaseVersion) -> list[str]:
        if obj.source_incident_id is not None:
            # Kept current on every write (`cases.refresh_findings`): no detector runs for a read.
            return [
                f"{', '.join(f.locations)}: {f.kind} {f.text!r}"
                for f in obj.findings.all()
                if f.status == CaseFinding.Status.OPEN
            ]
        return cases.identifying_findings(obj)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_publication_problems(self, obj: CaseVersion) -> dict[str, list[str]]:
        return cases.publication_problems(obj) if obj.status in ("draft", "review") else {}


class CaseActionInput(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="The version number; the latest by default."
    )


class FromIncidentInput(serializers.Serializer):
    incident = serializers.CharField(
        max_length=20, help_text="The reference of a closed incident (INC- and six digits)."
    )


# --------------------------------------------------------------------------------------------------
# Candidates and sessions
# --------------------------------------------------------------------------------------------------


class CandidateSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), required=False, allow_null=True
    )
    consent = serializers.BooleanField(write_only=True, required=False, default=False)
    organisation = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Domain.objects.all(),
        required=False,
        allow_null=True,
        help_text="The organisation (a domain slug) whose retention period applies; the desk-wide one without",
    )

    class Meta:
        model = Candidate
        fields = [
            "id", "name", "email", "user", "organisation", "consent", "consent_given_at", "consent_text",
            "retain_until", "erased_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "consent_given_at", "retain_until", "erased_at", "created_at"]
        extra_kwargs = {"consent_text": {"required": False}}


class MemberSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SessionMember
        fields = ["user", "role", "rates"]
        read_only_fields = fields


class ClockSerializer(serializers.Serializer):
    phase = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    budget_seconds = serializers.IntegerField(allow_null=True)
    elapsed_seconds = serializers.IntegerField()
    remaining_seconds = serializers.IntegerField(allow_null=True)
    warning = serializers.BooleanField()
    overrun_seconds = serializers.IntegerField()
    paused = serializers.BooleanField()


class SessionSerializer(serializers.ModelSerializer):
    case = serializers.CharField(source="case_version.case.slug", read_only=True)
    case_version = serializers.IntegerField(source="case_version.number", read_only=True)
    case_title = serializers.CharField(source="case_version.title", read_only=True)
    candidate = serializers.SerializerMethodField()
    members = MemberSerializer(many=True, read_only=True)
    clock = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    my_role = serializers.SerializerMethodField()
    candidate_url = serializers.SerializerMethodField()
    state = plain_choice(Session.State.choices, read_only=True)
    paused_from = plain_choice([("", ""), *Session.State.choices], read_only=True)

    class Meta:
        model = Session
        fields = [
            "id", "case", "case_version", "case_title", "candidate", "mode", "state", "members", "my_role",
            "extra_time_percent", "scheduled_for", "started_at", "phase_started_at", "phase_deadline",
            "clock", "paused_from", "pause_reason", "rating_started_at", "closed_at", "voided_at",
            "void_reason", "recommendation", "summary", "conflict_warning", "is_reference", "candidate_url",
            "allowed_actions", "version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def _user(self) -> Any:
        request = self.context.get("request")
        return request.user if request is not None else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_candidate(self, obj: Session) -> dict[str, Any]:
        return {"id": obj.candidate_id, "name": str(obj.candidate)}

    @extend_schema_field(ClockSerializer)
    def get_clock(self, obj: Session) -> dict[str, Any]:
        return ClockSerializer(lifecycle.clock(obj)).data

    def get_allowed_actions(self, obj: Session) -> list[str]:
        return lifecycle.allowed_actions(obj, self._user())

    @extend_schema_field(OpenApiTypes.STR)
    def get_my_role(self, obj: Session) -> str | None:
        user = self._user()
        if user is None or not user.is_authenticated:
            return None
        member = next((m for m in obj.members.all() if m.user_id == user.pk), None)
        return member.role if member else None

    @extend_schema_field(OpenApiTypes.STR)
    def get_candidate_url(self, obj: Session) -> str | None:
        # The candidate's link is a capability: only the lead hands it out.
        if self.get_my_role(obj) != SessionMember.Role.LEAD:
            return None
        return f"/api/v1/interviews/candidate/{obj.candidate_token}/"


class SessionCreateInput(serializers.Serializer):
    case = serializers.SlugField(max_length=80)
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="The published version by default."
    )
    candidate = serializers.PrimaryKeyRelatedField(queryset=Candidate.objects.all())
    lead = serializers.SlugRelatedField(slug_field="username", queryset=_users(), required=False)
    lead_rates = serializers.BooleanField(required=False, default=True)
    raters = serializers.SlugRelatedField(slug_field="username", queryset=_users(), many=True, required=False)
    observers = serializers.SlugRelatedField(
        slug_field="username", queryset=_users(), many=True, required=False
    )
    mode = serializers.ChoiceField(choices=Session.Mode.choices, default=Session.Mode.HIRING)
    extra_time_percent = serializers.IntegerField(min_value=0, max_value=200, default=0)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)


class VersionedInput(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Refuse with 409 if it changed."
    )
    from_state = serializers.CharField(
        max_length=12,
        required=False,
        help_text="Refuse with 409 unless the session is in this state (a double-click guard).",
    )


class ReasonInput(VersionedInput):
    reason = serializers.CharField(max_length=500)


class CloseInput(VersionedInput):
    recommendation = serializers.ChoiceField(
        choices=Session.Recommendation.choices, required=False, default=""
    )
    summary = serializers.CharField(max_length=TEXT, required=False, default="", allow_blank=True)


# --------------------------------------------------------------------------------------------------
# Inside a session
# --------------------------------------------------------------------------------------------------


class FactBoardSerializer(serializers.ModelSerializer):
    requires = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)
    revealed = serializers.SerializerMethodField()

    class Meta:
        model = Fact
        fields = [
            "key", "title", "text", "partial_text", "category", "importance", "triggers", "keywords",
            "requires", "offset_minutes", "revealed",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_revealed(self, obj: Fact) -> list[str]:
        return sorted(self.context.get("revealed", {}).get(obj.pk, []))


class QuestionSerializer(serializers.ModelSerializer):
    reveals = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = [
            "id",
            "text",
            "asked_at",
            "phase",
            "late",
            "answer",
            "answer_text",
            "answered_at",
            "reveals",
        ]
        read_only_fields = [
            "id",
            "asked_at",
            "phase",
            "late",
            "answer",
            "answer_text",
            "answered_at",
            "reveals",
        ]
        extra_kwargs = {"text": {"max_length": 2000}}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reveals(self, obj: Question) -> list[str]:
        return [f"{r.fact.key}:{r.level}" for r in obj.reveals.all()]


class AnswerInput(serializers.Serializer):
    answer = serializers.ChoiceField(choices=[Question.Answer.NOT_AVAILABLE, Question.Answer.FREE])
    text = serializers.CharField(max_length=TEXT, required=False, default="", allow_blank=True)


class RevealSerializer(serializers.ModelSerializer):
    fact = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Reveal
        fields = ["id", "fact", "level", "text", "question", "revealed_at"]
        read_only_fields = fields


class RevealInput(serializers.Serializer):
    fact = serializers.CharField(max_length=30)
    level = serializers.ChoiceField(choices=Reveal.Level.choices, default=Reveal.Level.FULL)
    question = serializers.IntegerField(required=False, allow_null=True)


class SuggestionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.CharField())
    revealed = serializers.ListField(child=serializers.CharField())


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    dimension = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "author", "at", "phase", "flag", "dimension", "text"]
        read_only_fields = fields


class NoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=TEXT, required=False, default="", allow_blank=True)
    flag = serializers.ChoiceField(choices=Note.Flag.choices, required=False, default="")
    dimension = serializers.CharField(max_length=60, required=False, allow_null=True, default=None)


class CandidateProblemSerializer(serializers.ModelSerializer):
    cited_facts = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)
    matched_problem = serializers.SlugRelatedField(slug_field="key", read_only=True)
    mapped_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    verdict = plain_choice(CandidateProblem.Verdict.choices, read_only=True)

    class Meta:
        model = CandidateProblem
        fields = [
            "id",
            "statement",
            "cited_facts",
            "stated_at",
            "phase",
            "late",
            "verdict",
            "matched_problem",
            "mapped_by",
        ]
        read_only_fields = fields


class CandidateSolutionSerializer(serializers.ModelSerializer):
    addresses = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    matched_solution = serializers.SlugRelatedField(slug_field="key", read_only=True)
    harmful_action = serializers.SlugRelatedField(slug_field="key", read_only=True)
    mapped_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    verdict = plain_choice(CandidateSolution.Verdict.choices, read_only=True)

    class Meta:
        model = CandidateSolution
        fields = [
            "id", "action", "reason", "rank", "addresses", "stated_at", "phase", "late", "verdict",
            "matched_solution", "harmful_action", "mapped_by",
        ]  # fmt: skip
        read_only_fields = fields


class ProblemInput(serializers.Serializer):
    statement = serializers.CharField(max_length=TEXT)
    cited_reveals = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=100
    )


class SolutionInput(serializers.Serializer):
    action = serializers.CharField(max_length=TEXT)
    reason = serializers.CharField(max_length=TEXT, required=False, default="", allow_blank=True)
    rank = serializers.IntegerField(min_value=1, max_value=100, required=False, allow_null=True, default=None)
    addresses = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=100
    )


class NotepadInput(serializers.Serializer):
    text = serializers.CharField(max_length=50_000, allow_blank=True)


class ProblemMapInput(serializers.Serializer):
    verdict = plain_choice(CandidateProblem.Verdict.choices)
    expected = serializers.CharField(max_length=30, required=False, allow_null=True, default=None)


class SolutionMapInput(serializers.Serializer):
    verdict = plain_choice(CandidateSolution.Verdict.choices)
    model = serializers.CharField(max_length=30, required=False, allow_null=True, default=None)
    harmful = serializers.CharField(max_length=30, required=False, allow_null=True, default=None)


class RatingSerializer(serializers.ModelSerializer):
    rater = serializers.SlugRelatedField(slug_field="username", read_only=True)
    dimension = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Rating
        fields = ["id", "rater", "dimension", "level", "evidence", "rated_at"]
        read_only_fields = fields


class RatingInput(serializers.Serializer):
    dimension = serializers.CharField(max_length=60)
    level = serializers.IntegerField(min_value=1, max_value=5)
    evidence = serializers.CharField(max_length=TEXT)


class ConsensusSerializer(serializers.ModelSerializer):
    dimension = serializers.SlugRelatedField(slug_field="key", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConsensusRating
        fields = ["id", "dimension", "level", "discussion", "decided_by", "decided_at"]
        read_only_fields = fields


class ConsensusInput(serializers.Serializer):
    dimension = serializers.CharField(max_length=60)
    level = serializers.IntegerField(min_value=1, max_value=5)
    discussion = serializers.CharField(max_length=TEXT, required=False, default="", allow_blank=True)


class SessionEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SessionEvent
        fields = ["id", "at", "kind", "actor", "by_candidate", "data"]
        read_only_fields = fields


# --------------------------------------------------------------------------------------------------
# The candidate's view (built by selectors.candidate_view from an allow-list)
# --------------------------------------------------------------------------------------------------


class CandidateRevealSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    level = serializers.CharField()
    revealed_at = serializers.DateTimeField()


class CandidateViewSerializer(serializers.Serializer):
    state = serializers.CharField()
    phase = serializers.CharField()
    mode = serializers.CharField()
    version = serializers.IntegerField()
    case = serializers.DictField(child=serializers.CharField(allow_blank=True))
    clock = serializers.DictField()
    pause_reason = serializers.CharField(allow_blank=True)
    reveals = CandidateRevealSerializer(many=True)
    answers = serializers.ListField(child=serializers.DictField())
    problems = serializers.ListField(child=serializers.DictField())
    solutions = serializers.ListField(child=serializers.DictField())
    notepad = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(allow_blank=True)


# --------------------------------------------------------------------------------------------------
# Calibration against reference sessions
# --------------------------------------------------------------------------------------------------


class CalibrationSessionSerializer(serializers.ModelSerializer):
    case = serializers.CharField(source="case_version.case.slug", read_only=True)
    version = serializers.IntegerField(source="case_version.number", read_only=True)
    title = serializers.CharField(source="case_version.title", read_only=True)
    rated = serializers.IntegerField(read_only=True, help_text="Dimensions you have rated")

    class Meta:
        model = Session
        fields = ["id", "case", "version", "title", "closed_at", "rated"]
        read_only_fields = fields


class CalibrationDimensionSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    name = serializers.CharField()
    anchors = serializers.DictField(child=serializers.CharField())
    level = serializers.IntegerField(allow_null=True)
    evidence = serializers.CharField(allow_blank=True)
    reference = serializers.IntegerField(allow_null=True, help_text="Shown once you rated every dimension")
    deviation = serializers.IntegerField(allow_null=True, help_text="Your level minus the reference")


class CalibrationResultSerializer(serializers.Serializer):
    session = serializers.IntegerField()
    rated = serializers.IntegerField()
    dimensions_total = serializers.IntegerField()
    complete = serializers.BooleanField()
    dimensions = CalibrationDimensionSerializer(many=True)
    mean_absolute_deviation = serializers.FloatField(allow_null=True)
    bias = serializers.FloatField(allow_null=True, help_text="Mean signed deviation: positive is lenient")


class CalibrationDetailSerializer(serializers.Serializer):
    material = serializers.DictField(help_text="The case and what the candidate did")
    result = CalibrationResultSerializer()


class ImageInput(serializers.Serializer):
    image = serializers.FileField(help_text="A PNG, JPEG or WebP image; stored re-encoded, without metadata")
