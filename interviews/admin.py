from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from incidents.errors import InvalidTransition
from incidents.permissions import ReadOnlyAdminMixin as ReadOnlyMixin

from . import cases, services
from .models import (
    Candidate,
    Case,
    CaseVersion,
    ExpectedProblem,
    Fact,
    HarmfulAction,
    InterviewSettings,
    ModelSolution,
    RetentionPolicy,
    Rubric,
    RubricDimension,
    Session,
    SessionEvent,
    SessionMember,
)


class RubricDimensionInline(admin.StackedInline):
    model = RubricDimension
    extra = 0


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]
    inlines = [RubricDimensionInline]


class VersionContentInline(admin.StackedInline):
    extra = 0

    def _editable(self, obj: CaseVersion | None) -> bool:
        return obj is None or (obj.status == CaseVersion.Status.DRAFT and not obj.is_frozen)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class FactInline(VersionContentInline):
    model = Fact
    filter_horizontal = ["requires"]


class ExpectedProblemInline(VersionContentInline):
    model = ExpectedProblem
    filter_horizontal = ["required_facts"]


class ModelSolutionInline(VersionContentInline):
    model = ModelSolution
    filter_horizontal = ["addresses"]


class HarmfulActionInline(VersionContentInline):
    model = HarmfulAction


def _case_action(request: HttpRequest, queryset: QuerySet[CaseVersion], function: Any, done: str) -> None:
    for version in queryset:
        try:
            function(version, actor=request.user)
        except (ValidationError, PermissionDenied, InvalidTransition) as error:
            messages.error(request, f"{version}: {error}")
        else:
            messages.success(request, f"{version}: {done}")


@admin.register(CaseVersion)
class CaseVersionAdmin(admin.ModelAdmin):
    """Draft versions are edited here; a version in review, published, retired or used by a session is
    read-only (edit through the API or the configuration file, which makes a new version)."""

    list_display = ["case", "number", "title", "status", "domain", "difficulty", "frozen_at", "published_at"]
    list_filter = ["status", "domain", "difficulty"]
    search_fields = ["case__slug", "title"]
    readonly_fields = [
        "case", "number", "status", "source_incident", "pseudonyms", "created_by", "created_at", "submitted_by",
        "submitted_at", "approved_by", "published_at", "retired_at", "frozen_at",
    ]  # fmt: skip
    inlines = [FactInline, ExpectedProblemInline, ModelSolutionInline, HarmfulActionInline]
    actions = ["submit_for_review", "approve", "retire"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a case starts as a document (API, configuration file) or from an incident

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and (obj.status != CaseVersion.Status.DRAFT or obj.is_frozen):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Submit for review", permissions=["view"])
    def submit_for_review(self, request: HttpRequest, queryset: QuerySet[CaseVersion]) -> None:
        _case_action(request, queryset, cases.submit_for_review, "submitted for review")

    @admin.action(description="Approve and publish (a second person)", permissions=["view"])
    def approve(self, request: HttpRequest, queryset: QuerySet[CaseVersion]) -> None:
        if not request.user.has_perm("interviews.publish_caseversion"):
            messages.error(request, "You may not publish cases.")
            return
        _case_action(request, queryset, cases.approve, "published")

    @admin.action(description="Retire", permissions=["view"])
    def retire(self, request: HttpRequest, queryset: QuerySet[CaseVersion]) -> None:
        if not request.user.has_perm("interviews.publish_caseversion"):
            messages.error(request, "You may not retire cases.")
            return
        _case_action(request, queryset, cases.retire, "retired")


class CaseVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = CaseVersion
    fields = readonly_fields = ("number", "title", "status", "frozen_at", "published_at")
    show_change_link = True
    extra = 0


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["slug", "created_at"]
    search_fields = ["slug", "versions__title"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [CaseVersionInline]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "organisation", "consent_given_at", "retain_until", "erased_at"]
    list_filter = ["organisation", "erased_at"]
    search_fields = ["name", "email"]
    readonly_fields = ["consent_given_at", "consent_text", "erased_at", "created_at"]
    autocomplete_fields = ["user"]
    actions = ["erase"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erase instead: anonymous statistics stay

    @admin.action(description="Erase personal data (keeps anonymous statistics)", permissions=["change"])
    def erase(self, request: HttpRequest, queryset: QuerySet[Candidate]) -> None:
        for candidate in queryset:
            services.erase_candidate(candidate, actor=request.user)
        messages.success(request, f"Erased {queryset.count()} candidate(s).")


class SessionMemberInline(ReadOnlyMixin, admin.TabularInline):
    model = SessionMember
    fields = readonly_fields = ("user", "role", "rates")
    extra = 0


@admin.register(Session)
class SessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Sessions change only through their lifecycle (the console and the API)."""

    list_display = [
        "id",
        "case_version",
        "candidate",
        "mode",
        "state",
        "started_at",
        "closed_at",
        "recommendation",
    ]
    list_filter = ["state", "mode", "is_reference"]
    search_fields = ["case_version__case__slug", "candidate__name"]
    exclude = ["candidate_token"]
    inlines = [SessionMemberInline]


@admin.register(SessionEvent)
class SessionEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["at", "session", "kind", "actor", "by_candidate"]
    list_filter = ["kind", "by_candidate"]
    search_fields = ["session__case_version__case__slug", "kind"]


@admin.register(InterviewSettings)
class InterviewSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "retention_days"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not InterviewSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """Per-organisation retention: the sweep applies a shortened period to existing candidates too."""

    list_display = ["organisation", "retention_days"]
