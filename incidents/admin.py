from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    Attachment,
    Category,
    Comment,
    Domain,
    FollowUpAction,
    Incident,
    Membership,
    Problem,
    Team,
    TimelineEntry,
)


class ReadOnlyAdminMixin:
    """Append-only records: visible in the admin, never added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "restricted", "requires_harm_level"]
    list_filter = ["restricted"]
    search_fields = ["slug", "name"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "tier", "manager", "email"]
    list_filter = ["tier", "domains"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["domains"]
    inlines = [MembershipInline]
    autocomplete_fields = ["manager"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["path", "domain", "name", "default_team"]
    list_filter = ["domain"]
    search_fields = ["path", "name"]
    autocomplete_fields = ["parent", "default_team"]
    readonly_fields = ["path"]


class FollowUpActionInline(admin.TabularInline):
    model = FollowUpAction
    extra = 1
    autocomplete_fields = ["owner"]
    fields = ["title", "owner", "due_date", "done_at"]


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    """Records are edited here like through the API; the state moves only along the table of
    incidents.problems (the API's `state` action), so it is read-only here."""

    list_display = ["title", "state", "known_error", "category", "team", "created_at"]
    list_filter = ["state", "known_error", "team"]
    search_fields = ["title", "root_cause"]
    autocomplete_fields = ["category", "team", "owner"]
    readonly_fields = [
        "state",
        "known_error",
        "proposal_key",
        "resolved_at",
        "closed_at",
        "version",
        "created_at",
    ]
    inlines = [FollowUpActionInline]


class TimelineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TimelineEntry
    fields = ("at", "kind", "action", "actor", "public", "data")
    readonly_fields = ("at", "kind", "action", "actor", "public", "data")
    extra = 0
    can_delete = False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Incidents change through the lifecycle, so the admin shows them and never edits state."""

    list_display = ["reference", "title", "state", "priority", "domain", "team", "assignee", "received_at"]
    list_filter = ["state", "priority", "domain", "team", "channel", "confidential", "outcome"]
    search_fields = ["title", "description", "reporter_email", "external_id"]
    list_select_related = ["domain", "team", "assignee"]
    date_hierarchy = "received_at"
    raw_id_fields = [
        "reporter",
        "assignee",
        "parent",
        "duplicate_of",
        "category",
        "team",
        "problem",
        "domain",
    ]
    inlines = [TimelineInline]
    readonly_fields = [
        "state", "version", "escalation_level", "reopen_count", "received_at", "classified_at", "responded_at",
        "acknowledged_at", "escalated_at", "resolved_at", "closed_at", "cancelled_at", "held_from", "held_at",
        "hold_reason", "auto_closed", "created_at", "updated_at", "priority", "response_due_at", "resolution_due_at",
    ]  # fmt: skip

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A closed or cancelled record is frozen, in the admin too.
        return super().has_change_permission(request, obj) and not (obj is not None and obj.is_final)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "at", "kind", "action", "actor", "public"]
    list_filter = ["kind", "action", "public"]
    search_fields = ["incident__title"]
    list_select_related = ["incident", "actor"]


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "author", "public", "created_at"]
    list_filter = ["public"]
    search_fields = ["body"]
    list_select_related = ["incident", "author"]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["filename", "incident", "content_type", "size", "uploaded_by", "created_at"]
    list_filter = ["content_type", "public"]
    search_fields = ["filename", "sha256"]
    list_select_related = ["incident", "uploaded_by"]
