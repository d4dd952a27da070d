from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from incidents.permissions import ReadOnlyAdminMixin

from .models import (
    AutoAssign,
    BusinessCalendar,
    EngineHeartbeat,
    EscalationPolicy,
    EscalationStep,
    IncidentEscalation,
    Notification,
    ReportFiling,
    Schedule,
    ScheduleMember,
    ScheduleOverride,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    Timer,
    WebhookEndpoint,
)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "time_zone", "always_open", "holiday_country"]
    list_filter = ["always_open", "time_zone"]
    search_fields = ["slug", "name"]


class SlaTargetInline(admin.TabularInline):
    model = SlaTarget
    extra = 0


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "priority",
        "domain",
        "response_minutes",
        "resolution_minutes",
        "calendar",
        "active",
    ]
    list_filter = ["active", "priority", "domain"]
    search_fields = ["name"]
    inlines = [SlaTargetInline]


class EscalationStepInline(admin.StackedInline):
    model = EscalationStep
    extra = 0


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "team"]
    search_fields = ["slug", "name"]
    inlines = [EscalationStepInline]


class ScheduleMemberInline(admin.TabularInline):
    model = ScheduleMember
    extra = 1


class ScheduleOverrideInline(admin.TabularInline):
    model = ScheduleOverride
    extra = 0


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "team", "time_zone", "shift_length"]
    list_filter = ["team"]
    search_fields = ["slug", "name"]
    inlines = [ScheduleMemberInline, ScheduleOverrideInline]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "url", "active", "events", "owner_user", "owner_team"]
    list_filter = ["active"]
    search_fields = ["slug", "name", "url"]
    exclude = ["secret"]  # shown once, by the API that creates or rotates it
    raw_id_fields = ["owner_user"]


@admin.register(SlaClock)
class SlaClockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "kind", "name", "cycle", "due_at", "warned_at", "breached_at", "completed_at"]
    list_filter = ["kind"]
    search_fields = ["incident__title"]
    list_select_related = ["incident"]


@admin.register(Timer)
class TimerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "kind", "state", "due_at", "fired_at"]
    list_filter = ["kind", "state"]
    search_fields = ["key"]


@admin.register(IncidentEscalation)
class IncidentEscalationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "epoch", "policy", "started_at", "stopped_at", "stop_reason"]
    search_fields = ["incident__title"]
    list_select_related = ["incident", "policy"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["event", "channel", "recipient", "state", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["state", "channel", "event"]
    search_fields = ["recipient", "key"]
    readonly_fields = [
        f.name for f in Notification._meta.fields if f.name not in {"state", "next_attempt_at"}
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an admin may only re-queue a dead notification (state and next attempt)


@admin.register(EngineHeartbeat)
class EngineHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "beat_at", "fired"]


@admin.register(AutoAssign)
class AutoAssignAdmin(admin.ModelAdmin):
    list_display = ["team", "mode", "last_assigned"]
    list_filter = ["mode"]
    readonly_fields = ["last_assigned"]


@admin.register(ReportFiling)
class ReportFilingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["incident", "target", "reference", "filed_by", "filed_at"]
    search_fields = ["reference", "target"]
