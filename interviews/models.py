"""Incident-process interviews: a versioned case library, live sessions, ratings and their log.

A case is an identity (`Case`) with numbered versions (`CaseVersion`) that hold the content. A version
that any session used is frozen: editing it makes a new version (see `interviews.cases`). A session
runs one frozen case version; `interviews.lifecycle` is the only writer of `Session.state`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.models import attachment_storage

LEVELS = (1, 2, 3, 4, 5)


def case_image_path(instance: CaseVersion, filename: str) -> str:
    # Never the uploader's file name: a random name under the case, in the private attachments storage.
    return f"interview-cases/{instance.case_id}/{uuid.uuid4().hex}"


class AppendOnlyError(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Rubrics (configuration, shared by many cases)
# --------------------------------------------------------------------------------------------------


class Rubric(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class RubricDimension(models.Model):
    """One criterion of a rubric, rated on levels 1-5, each level anchored to observable behaviour."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="dimensions")
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    weight = models.DecimalField(max_digits=5, decimal_places=2, default=1)
    order = models.PositiveSmallIntegerField(default=0)
    # {"1": "...", ..., "5": "..."}: the anchor of each level.
    anchors = models.JSONField(default=dict)

    class Meta:
        ordering = ["rubric", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "key"], name="rubric_dimension_key_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="rubric_dimension_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rubric.slug}:{self.key}"


# --------------------------------------------------------------------------------------------------
# The case library
# --------------------------------------------------------------------------------------------------


class Case(models.Model):
    """The identity of a case across its versions."""

    slug = models.SlugField(max_length=80, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class CaseVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        REVIEW = "review", _("In review")
        PUBLISHED = "published", _("Published")
        RETIRED = "retired", _("Retired")

    class Difficulty(models.IntegerChoices):
        INTRODUCTORY = 1, _("Introductory")
        BASIC = 2, _("Basic")
        INTERMEDIATE = 3, _("Intermediate")
        ADVANCED = 4, _("Advanced")
        EXPERT = 5, _("Expert")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)

    title = models.CharField(max_length=200)
    domain = models.ForeignKey(
        "incidents.Domain", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tags = models.JSONField(default=list, blank=True)
    difficulty = models.PositiveSmallIntegerField(choices=Difficulty.choices, default=Difficulty.INTERMEDIATE)
    target_role = models.CharField(max_length=120, blank=True)
    presentation = models.TextField(help_text=_("What the candidate hears first: 2-6 sentences."))
    brief = models.TextField(blank=True, help_text=_("The candidate's task, shown with the presentation."))
    image = models.FileField(
        upload_to=case_image_path,
        storage=attachment_storage,
        max_length=200,
        blank=True,
        editable=False,
        help_text=_("An optional presentation image, re-encoded without metadata (see interviews.images)."),
    )
    image_type = models.CharField(max_length=20, blank=True, editable=False)
    present_seconds = models.PositiveIntegerField(default=3 * 60)
    gather_seconds = models.PositiveIntegerField(default=15 * 60)
    extract_seconds = models.PositiveIntegerField(default=7 * 60)
    solve_seconds = models.PositiveIntegerField(default=10 * 60)
    evaluate_seconds = models.PositiveIntegerField(default=10 * 60)
    actual_outcome = models.TextField(blank=True, help_text=_("What really happened, for debriefs."))
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="case_versions")
    source_incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Pseudonym -> kind for a case drafted from an incident (never the originals: they stay in the incident).
    pseudonyms = models.JSONField(default=dict, blank=True)
    # Keyed digest of an original (`cases.original_key`) -> its pseudonym, so that a name put back into
    # the case is offered the pseudonym it already has. A digest keyed with the site's secret, never
    # the original: names are few, and a plain hash of one is found by trying them all.
    pseudonym_keys = models.JSONField(default=dict, blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    frozen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set when the first session uses this version; its content is fixed."),
    )

    class Meta:
        ordering = ["case", "-number"]
        permissions = [("publish_caseversion", "Can approve, publish and retire case versions")]
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="case_version_number_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "review", "published", "retired"]),
                name="case_version_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case.slug} v{self.number}"

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None

    def time_boxes(self) -> dict[str, int]:
        return {
            "present": self.present_seconds,
            "gather": self.gather_seconds,
            "extract": self.extract_seconds,
            "solve": self.solve_seconds,
            "evaluate": self.evaluate_seconds,
        }


class CaseFinding(models.Model):
    """Something a detector finds in a version drafted from an incident, for a reviewer to decide.

    One row per distinct text and kind in the version. The version is not published while a row is
    open: the reviewer accepts it (it identifies no one) or replaces it everywhere in the version. A
    replaced row keeps the replacement, not the text it replaced.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        REPLACED = "replaced", _("Replaced")

    version = models.ForeignKey(CaseVersion, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=20)
    text = models.CharField(max_length=300, blank=True)
    locations = models.JSONField(
        default=list, blank=True, help_text=_("Where in the version: title, fact F2, ...")
    )
    certain = models.BooleanField(
        default=False,
        help_text=_("A detector that replaces on its own found it (it stayed: someone put it back)."),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    replacement = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "kind", "text"],
                condition=~Q(status="replaced"),
                name="case_finding_unique_per_version",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "accepted", "replaced"]), name="case_finding_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.kind} {self.status}"


class Fact(models.Model):
    class Category(models.TextChoices):
        TIMELINE = "timeline", _("Timeline")
        IMPACT = "impact", _("Impact")
        CHANGE = "change", _("Change")
        MONITORING = "monitoring", _("Monitoring")
        PEOPLE = "people", _("People")
        DEPENDENCY = "dependency", _("Dependency")

    class Importance(models.TextChoices):
        KEY = "key", _("Key")
        SUPPORTING = "supporting", _("Supporting")
        NOISE = "noise", _("Noise")
        RED_HERRING = "red_herring", _("Red herring")

    version = models.ForeignKey(CaseVersion, on_delete=models.CASCADE, related_name="facts")
    key = models.SlugField(max_length=30)
    title = models.CharField(max_length=120, help_text=_("A short label for the interviewer's fact board."))
    text = models.TextField(help_text=_("The objective answer, revealed in full."))
    partial_text = models.TextField(blank=True, help_text=_("What a vague question gets."))
    category = models.CharField(max_length=12, choices=Category.choices, default=Category.TIMELINE)
    importance = models.CharField(max_length=12, choices=Importance.choices, default=Importance.SUPPORTING)
    triggers = models.JSONField(default=list, blank=True, help_text=_("Canonical questions that reach it."))
    keywords = models.JSONField(default=list, blank=True)
    requires = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="required_by")
    offset_minutes = models.IntegerField(null=True, blank=True, help_text=_("T+ minutes in the incident."))
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="fact_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"


class ExpectedProblem(models.Model):
    class Kind(models.TextChoices):
        TRIGGER = "trigger", _("Trigger")
        ROOT_CAUSE = "root_cause", _("Root cause")
        CONTRIBUTING = "contributing_factor", _("Contributing factor")
        PROCESS_GAP = "process_gap", _("Process gap")
        COMMUNICATION_GAP = "communication_gap", _("Communication gap")

    version = models.ForeignKey(CaseVersion, on_delete=models.CASCADE, related_name="problems")
    key = models.SlugField(max_length=30)
    statement = models.TextField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ROOT_CAUSE)
    weight = models.DecimalField(max_digits=5, decimal_places=2, default=1)
    required_facts = models.ManyToManyField(Fact, blank=True, related_name="problems")
    paraphrases = models.JSONField(default=list, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="expected_problem_key_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="expected_problem_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.statement[:60]}"


class ModelSolution(models.Model):
    class Type(models.TextChoices):
        MITIGATE = "mitigate", _("Mitigate")
        FIX = "fix", _("Fix")
        PREVENT = "prevent", _("Prevent")
        COMMUNICATE = "communicate", _("Communicate")

    version = models.ForeignKey(CaseVersion, on_delete=models.CASCADE, related_name="solutions")
    key = models.SlugField(max_length=30)
    action = models.TextField()
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.FIX)
    rank = models.PositiveSmallIntegerField(default=1, help_text=_("1 comes first."))
    weight = models.DecimalField(max_digits=5, decimal_places=2, default=1)
    addresses = models.ManyToManyField(ExpectedProblem, blank=True, related_name="solutions")

    class Meta:
        ordering = ["version", "rank", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="model_solution_key_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="model_solution_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.action[:60]}"


class HarmfulAction(models.Model):
    version = models.ForeignKey(CaseVersion, on_delete=models.CASCADE, related_name="harmful_actions")
    key = models.SlugField(max_length=30)
    action = models.TextField()
    why = models.TextField(blank=True)
    penalty = models.DecimalField(max_digits=5, decimal_places=2, default=1)

    class Meta:
        ordering = ["version", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="harmful_action_key_unique"),
            models.CheckConstraint(condition=Q(penalty__gte=0), name="harmful_action_penalty_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.action[:60]}"


# --------------------------------------------------------------------------------------------------
# Candidates and their data
# --------------------------------------------------------------------------------------------------


class InterviewSettings(models.Model):
    """The organisation's settings for interviews (one row)."""

    retention_days = models.PositiveIntegerField(
        default=365, help_text=_("How long candidate data is kept after it was recorded.")
    )

    class Meta:
        verbose_name_plural = "interview settings"

    def __str__(self) -> str:
        return f"Retention {self.retention_days} days"

    @classmethod
    def current(cls) -> InterviewSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class RetentionPolicy(models.Model):
    """How long one organisation keeps candidate data, overriding the desk-wide `InterviewSettings`.

    An organisation is one of the desk's domains (IT service, security, medical, ...): each is run by a
    different part of the organisation under its own rules (clinical staff records are kept differently
    from IT ones), and every case already belongs to a domain.
    """

    organisation = models.OneToOneField(
        "incidents.Domain", on_delete=models.CASCADE, related_name="interview_retention"
    )
    retention_days = models.PositiveIntegerField(
        help_text=_("How long candidate data of this organisation is kept after it was recorded.")
    )

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["organisation"]
        constraints = [
            models.CheckConstraint(condition=Q(retention_days__gt=0), name="retention_days_positive")
        ]

    def __str__(self) -> str:
        return f"{self.organisation}: {self.retention_days} days"

    @staticmethod
    def days_for(organisation_id: int | None) -> int:
        """The retention period of an organisation: its policy, else the desk-wide setting."""
        policy = (
            RetentionPolicy.objects.filter(organisation_id=organisation_id).first()
            if organisation_id
            else None
        )
        return policy.retention_days if policy else InterviewSettings.current().retention_days


class Candidate(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="candidacies",
        help_text=_("Their desk account, if any: used for the conflict check against source incidents."),
    )
    organisation = models.ForeignKey(
        "incidents.Domain",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The organisation (domain) that interviews them: its retention period applies."),
    )
    consent_given_at = models.DateTimeField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    retain_until = models.DateField(
        null=True,
        blank=True,
        help_text=_(
            "Set when recorded, from the organisation's period. A period shortened later applies too; a "
            "longer one only to new candidates, who consented to it."
        ),
    )
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name if not self.erased_at else f"Erased candidate {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.retain_until is None:
            days = RetentionPolicy.days_for(self.organisation_id)
            self.retain_until = (self.created_at + timedelta(days=days)).date()
        super().save(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------------

SESSION_STATES = [
    "scheduled",
    "present",
    "gather",
    "extract",
    "solve",
    "evaluate",
    "rating",
    "consensus",
    "closed",
    "paused",
    "void",
]


def new_candidate_token() -> str:
    return secrets.token_urlsafe(32)


class Session(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        PRESENT = "present", _("1 Present")
        GATHER = "gather", _("2 Gather facts")
        EXTRACT = "extract", _("3 Extract problems")
        SOLVE = "solve", _("4 Propose solutions")
        EVALUATE = "evaluate", _("5 Evaluate")
        RATING = "rating", _("Rating")
        CONSENSUS = "consensus", _("Consensus")
        CLOSED = "closed", _("Closed")
        PAUSED = "paused", _("Paused")
        VOID = "void", _("Void")

    class Mode(models.TextChoices):
        HIRING = "hiring", _("Hiring")
        TRAINING = "training", _("Training")

    class Recommendation(models.TextChoices):
        STRONG_YES = "strong_yes", _("Strong yes")
        YES = "yes", _("Yes")
        NO = "no", _("No")
        STRONG_NO = "strong_no", _("Strong no")
        NOT_APPLICABLE = "not_applicable", _("Not applicable (training)")

    TIMED_PHASES = ("present", "gather", "extract", "solve", "evaluate")
    FINAL_STATES = (State.CLOSED, State.VOID)

    case_version = models.ForeignKey(CaseVersion, on_delete=models.PROTECT, related_name="sessions")
    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="sessions")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.HIRING)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SCHEDULED)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    extra_time_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(200)],
        help_text=_("Accommodation: extra time on every phase."),
    )
    candidate_token = models.CharField(
        max_length=64, unique=True, default=new_candidate_token, editable=False
    )
    candidate_notes = models.TextField(blank=True, help_text=_("The candidate's notepad."))
    conflict_warning = models.TextField(blank=True)

    phase_started_at = models.DateTimeField(null=True, blank=True)
    phase_deadline = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_from = models.CharField(max_length=12, choices=State.choices, blank=True)
    pause_reason = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    rating_started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=500, blank=True)

    recommendation = models.CharField(max_length=16, choices=Recommendation.choices, blank=True)
    summary = models.TextField(blank=True)
    is_reference = models.BooleanField(
        default=False, help_text=_("A recorded session whose consensus raters calibrate against.")
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=SESSION_STATES), name="session_state_valid"),
            models.CheckConstraint(condition=Q(mode__in=["hiring", "training"]), name="session_mode_valid"),
        ]
        indexes = [models.Index(fields=["case_version", "state"], name="session_case_state_idx")]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.case_version})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    def phase_budget_seconds(self, phase: str) -> int:
        """The time box of a phase with the candidate's extra time."""
        base = self.case_version.time_boxes()[phase]
        return base + (base * self.extra_time_percent) // 100


class SessionMember(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead", _("Lead interviewer")
        RATER = "rater", _("Rater")
        OBSERVER = "observer", _("Observer")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="interview_panels"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    rates = models.BooleanField(default=True, help_text=_("Scores the candidate (never for observers)."))

    class Meta:
        ordering = ["session", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="session_member_unique"),
            models.UniqueConstraint(fields=["session"], condition=Q(role="lead"), name="session_one_lead"),
            models.CheckConstraint(condition=~Q(role="observer", rates=True), name="observer_never_rates"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class PhaseRecord(models.Model):
    """One run of a timed phase: its budget, pauses and overrun. Reports read these."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="phases")
    phase = models.CharField(max_length=12)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    budget_seconds = models.PositiveIntegerField()
    paused_seconds = models.PositiveIntegerField(default=0)
    overrun_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["session", "started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "phase"], name="phase_record_unique")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.phase}"


class SessionPause(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="pauses")
    phase = models.CharField(max_length=12)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["session", "started_at"]

    def __str__(self) -> str:
        return f"{self.session_id} paused at {self.started_at:%H:%M:%S}"


class Question(models.Model):
    class Answer(models.TextChoices):
        PENDING = "pending", _("Not answered yet")
        REVEALED = "revealed", _("Revealed a fact")
        NOT_AVAILABLE = "not_available", _("Not available")
        FREE = "free", _("Answered freely")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="questions")
    text = models.TextField()
    asked_at = models.DateTimeField(default=timezone.now)
    phase = models.CharField(max_length=12)
    late = models.BooleanField(default=False, help_text=_("Asked after the gathering phase."))
    answer = models.CharField(max_length=16, choices=Answer.choices, default=Answer.PENDING)
    answer_text = models.TextField(blank=True, help_text=_("A free answer, worded as given."))
    answered_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["session", "asked_at", "id"]

    def __str__(self) -> str:
        return self.text[:80]


class Reveal(models.Model):
    """A fact given to the candidate, worded exactly as revealed."""

    class Level(models.TextChoices):
        PARTIAL = "partial", _("Partial")
        FULL = "full", _("Full")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="reveals")
    fact = models.ForeignKey(Fact, on_delete=models.PROTECT, related_name="reveals")
    question = models.ForeignKey(
        Question, null=True, blank=True, on_delete=models.SET_NULL, related_name="reveals"
    )
    level = models.CharField(max_length=8, choices=Level.choices)
    text = models.TextField()
    revealed_at = models.DateTimeField(default=timezone.now)
    revealed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["session", "revealed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "fact", "level"], name="reveal_once_per_level")
        ]

    def __str__(self) -> str:
        return f"{self.fact.key} ({self.level})"


class Note(models.Model):
    """An interviewer's or rater's observation: a quick flag, or an evidence note for a rubric dimension."""

    class Flag(models.TextChoices):
        NONE = "", _("None")
        ASSUMED = "assumed_without_asking", _("Assumed without asking")
        RED_HERRING = "chasing_red_herring", _("Chasing a red herring")
        GOOD_QUESTION = "good_question", _("Good question")
        OTHER = "other", _("Other")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    phase = models.CharField(max_length=12)
    flag = models.CharField(max_length=24, choices=Flag.choices, blank=True)
    dimension = models.ForeignKey(
        RubricDimension, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["session", "at", "id"]

    def __str__(self) -> str:
        return self.flag or self.text[:60]


class CandidateProblem(models.Model):
    class Verdict(models.TextChoices):
        UNMAPPED = "unmapped", _("Not mapped yet")
        MATCHED = "matched", _("Matches an expected problem")
        NOVEL_VALID = "novel_valid", _("Valid, not expected (case review)")
        INVALID = "invalid", _("Not valid")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="candidate_problems")
    statement = models.TextField()
    cited_facts = models.ManyToManyField(Fact, blank=True, related_name="+")
    stated_at = models.DateTimeField(default=timezone.now)
    phase = models.CharField(max_length=12)
    late = models.BooleanField(default=False)
    verdict = models.CharField(max_length=12, choices=Verdict.choices, default=Verdict.UNMAPPED)
    matched_problem = models.ForeignKey(
        ExpectedProblem, null=True, blank=True, on_delete=models.PROTECT, related_name="candidate_matches"
    )
    mapped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["session", "stated_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict="matched", matched_problem__isnull=False)
                | (~Q(verdict="matched") & Q(matched_problem__isnull=True)),
                name="candidate_problem_match_consistent",
            )
        ]

    def __str__(self) -> str:
        return self.statement[:80]


class CandidateSolution(models.Model):
    class Verdict(models.TextChoices):
        UNMAPPED = "unmapped", _("Not mapped yet")
        MATCHED = "matched", _("Matches a model solution")
        HARMFUL = "harmful", _("A harmful action")
        OTHER = "other", _("Neither")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="candidate_solutions")
    action = models.TextField()
    reason = models.TextField(blank=True)
    rank = models.PositiveSmallIntegerField()
    addresses = models.ManyToManyField(CandidateProblem, blank=True, related_name="solutions")
    stated_at = models.DateTimeField(default=timezone.now)
    phase = models.CharField(max_length=12)
    late = models.BooleanField(default=False)
    verdict = models.CharField(max_length=12, choices=Verdict.choices, default=Verdict.UNMAPPED)
    matched_solution = models.ForeignKey(
        ModelSolution, null=True, blank=True, on_delete=models.PROTECT, related_name="candidate_matches"
    )
    harmful_action = models.ForeignKey(
        HarmfulAction, null=True, blank=True, on_delete=models.PROTECT, related_name="candidate_matches"
    )
    mapped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["session", "rank", "id"]

    def __str__(self) -> str:
        return self.action[:80]


class Rating(models.Model):
    """One rater's level on one dimension, with the evidence for it. Blind until consensus."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="interview_ratings"
    )
    dimension = models.ForeignKey(RubricDimension, on_delete=models.PROTECT, related_name="ratings")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    evidence = models.TextField()
    rated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "dimension__order", "rater_id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "rater", "dimension"], name="rating_unique"),
            models.CheckConstraint(condition=Q(level__gte=1, level__lte=5), name="rating_level_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} {self.dimension.key}={self.level}"


class ConsensusRating(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="consensus")
    dimension = models.ForeignKey(RubricDimension, on_delete=models.PROTECT, related_name="consensus_ratings")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    discussion = models.TextField(
        blank=True, help_text=_("Required where raters differed by two levels or more.")
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "dimension__order"]
        constraints = [
            models.UniqueConstraint(fields=["session", "dimension"], name="consensus_unique"),
            models.CheckConstraint(condition=Q(level__gte=1, level__lte=5), name="consensus_level_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.dimension.key}={self.level}"


class CalibrationRating(models.Model):
    """A rater's level on a reference session, compared with that session's consensus."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="calibration_ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dimension = models.ForeignKey(RubricDimension, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    evidence = models.TextField()
    rated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "rater_id", "dimension__order"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "rater", "dimension"], name="calibration_rating_unique"
            ),
            models.CheckConstraint(condition=Q(level__gte=1, level__lte=5), name="calibration_level_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} {self.dimension.key}={self.level} (calibration)"


class SessionEventQuerySet(models.QuerySet["SessionEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The session log is append-only: entries cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The session log is append-only: entries cannot be deleted.")


class SessionEvent(models.Model):
    """One thing that happened in a session. Written once, never edited or deleted.

    Entries name objects by id and key, never by their free text, so that erasing a candidate's data
    leaves the log intact.
    """

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        STATE_CHANGED = "state_changed", _("State changed")
        QUESTION = "question", _("Question")
        REVEAL = "reveal", _("Fact revealed")
        ANSWER = "answer", _("Answered")
        NOTE = "note", _("Note")
        PROBLEM = "problem", _("Problem stated")
        SOLUTION = "solution", _("Solution proposed")
        MAPPED = "mapped", _("Mapped by a rater")
        RATING = "rating", _("Rating submitted")
        CONSENSUS = "consensus", _("Consensus recorded")
        OVERRUN = "overrun", _("Phase overran")
        ERASED = "erased", _("Candidate data erased")

    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    by_candidate = models.BooleanField(default=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    data = models.JSONField(default=dict, blank=True)

    objects = SessionEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["session", "at", "id"], name="session_event_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("The session log is append-only: entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The session log is append-only: entries cannot be deleted.")


assert Session.State.values == SESSION_STATES, "SESSION_STATES must list Session.State in order"  # noqa: S101
