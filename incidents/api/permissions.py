"""Who may use the configuration endpoints (users, teams, categories)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from incidents.selectors import desk_user


def is_desk_admin(user: Any) -> bool:
    """The desk's administrators: staff (Django admin users) and superusers."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def can_manage_users(user: Any) -> bool:
    """Admins, and user managers: people given the `auth.change_user` permission (e.g. a directory sync
    account) without being admins."""
    return is_desk_admin(user) or bool(user and user.is_authenticated and user.has_perm("auth.change_user"))


class IsDeskAdmin(permissions.BasePermission):
    message = "Only the desk's administrators may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_desk_admin(request.user)


class ReadResponderWriteAdmin(permissions.BasePermission):
    """Responders read (they pick teams when escalating); admins change."""

    message = "Only responders read this, and only the desk's administrators change it."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return desk_user(request.user).is_responder or is_desk_admin(request.user)
        return is_desk_admin(request.user)


class ReadAnyWriteAdmin(permissions.BasePermission):
    """Everyone signed in reads (a reporter picks a category); admins change."""

    message = "Only the desk's administrators change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_desk_admin(request.user)


class CanManageUsers(permissions.BasePermission):
    message = "Only administrators and user managers manage people."

    def has_permission(self, request: Request, view: Any) -> bool:
        return can_manage_users(request.user)
