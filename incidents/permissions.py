"""Who may use what, written once for every app: the API's and the pages' responder checks, and the admin's
read-only records.

A responder is a member of a team (incidents.selectors.desk_user); to anyone else the console, its pages and
its API do not exist (404 on pages, 403 on the API, as SPEC section 1 says).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from rest_framework import permissions
from rest_framework.request import Request

from . import audit
from .models import Incident
from .selectors import desk_user


class IsResponder(permissions.BasePermission):
    """API: responders only."""

    message = "Only responders (members of a team) may use this endpoint."

    def has_permission(self, request: Request, view: Any) -> bool:
        return desk_user(request.user).is_responder


class ResponderReadsStaffWrites(permissions.BasePermission):
    """API configuration: responders read it; administrators (staff) change it."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return IsResponder().has_permission(request, view)
        return bool(request.user and request.user.is_staff)


def responder_or_404(request: HttpRequest) -> None:
    """Pages: the console is for responders; to anyone else it does not exist."""
    if not desk_user(request.user).is_responder:
        raise Http404("No such page.")


class ReadOnlyAdminMixin:
    """Admin: records only the domain functions write (append-only, derived): visible in the admin, never
    added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdminMixin:
    """Admin: pages that show incidents' content (the incidents themselves, their timeline, comments and
    attachments) audit the restricted ones they show, like every other read path (issue 11, Build 8): a
    change list audits its page of rows, a change page its one object. `incident_field` names the row's
    incident ("" for Incident itself)."""

    incident_field = "incident"

    def _incident_ids(self, objects: Any) -> list[int]:
        return [
            obj.pk if not self.incident_field else getattr(obj, f"{self.incident_field}_id")
            for obj in objects
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None and request.method == "GET":
            self._audit(request, self._incident_ids(changelist.result_list), "admin list")
        return response

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is not None:
            self._audit(request, self._incident_ids([obj]), "admin change")
        return obj

    def _audit(self, request: HttpRequest, ids: list[int], detail: str) -> None:
        if ids:
            audit.note_handled(request.user, Incident.objects.filter(pk__in=ids), detail=f"GET {detail}")
