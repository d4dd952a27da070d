from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from incidents.permissions import ReadOnlyAdminMixin

from . import events
from .models import AlertGroup, InboundEmail, Integration


def _show_keys(
    request: HttpRequest, admin_site: admin.AdminSite, keys: list[tuple[Integration, str]]
) -> HttpResponse:
    """The new keys on a page of their own (never in a message cookie): the only time they are shown."""
    context = {**admin_site.each_context(request), "title": "New routing keys", "keys": keys}
    return TemplateResponse(request, "intake/admin/routing_keys.html", context)


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "domain", "category", "team", "key_prefix", "key_rotated_at", "active"]
    list_filter = ["active", "domain"]
    search_fields = ["slug", "name"]
    readonly_fields = ["key_prefix", "key_rotated_at", "user", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["rotate_keys"]

    def save_model(self, request: HttpRequest, obj: Integration, form: Any, change: bool) -> None:
        if not change:
            request._new_routing_key = obj.set_new_key()  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
        events.service_user(obj)

    def response_add(
        self, request: HttpRequest, obj: Integration, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw = getattr(request, "_new_routing_key", None)
        if raw:
            return _show_keys(request, self.admin_site, [(obj, raw)])
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Rotate the routing key (the old key stops working at once)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[Integration]) -> HttpResponse:
        keys = []
        for integration in queryset:
            raw = integration.set_new_key()
            integration.save(update_fields=["key_hash", "key_prefix", "key_rotated_at"])
            keys.append((integration, raw))
        return _show_keys(request, self.admin_site, keys)


@admin.register(AlertGroup)
class AlertGroupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "integration",
        "dedup_key",
        "incident",
        "open",
        "alert_count",
        "held_action",
        "first_seen_at",
        "last_seen_at",
    ]
    list_filter = ["open", "integration"]
    search_fields = ["dedup_key"]
    list_select_related = ["integration", "incident"]


@admin.register(InboundEmail)
class InboundEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "sender", "subject", "outcome", "incident", "source", "short_detail"]
    list_filter = ["outcome", "source"]
    search_fields = ["sender", "subject", "message_id"]
    list_select_related = ["incident"]

    @admin.display(description="Detail")
    def short_detail(self, obj: InboundEmail) -> str:
        """Why a message was refused, in the list (the full text is on the row's page)."""
        return obj.detail if len(obj.detail) <= 160 else obj.detail[:157] + "..."
