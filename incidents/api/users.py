"""`/api/v1/users/`: people, for admins and user managers. List, filter, create, update, deactivate (never
delete: their history stays), roles, team memberships, qualifications and API tokens; `sync/` is the
idempotent upsert by external id or e-mail that a directory sync calls every hour."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.audit import changed_fields, record_change
from accounts.models import ApiToken, DirectoryIdentity
from config.api import CursorPagination
from incidents.deskconfig import ValidityDates, plain
from incidents.models import Membership, Qualification, QualificationHolder, Team

from .permissions import CanManageUsers, is_desk_admin
from .views import ERRORS

User = get_user_model()

# A role is a set of Django permissions (or the staff flag): what the API and the admin both read.
ROLE_PERMISSIONS = {
    "privacy_officer": [("incidents", "view_confidential_reporter")],
    "user_manager": [("auth", "view_user"), ("auth", "add_user"), ("auth", "change_user")],
}
ROLES = ["admin", *ROLE_PERMISSIONS]
COMPUTED = ("external_id", "roles", "teams", "qualifications")


def _iso(day: Any) -> str | None:
    return day.isoformat() if day is not None else None


def roles_of(user: Any) -> list[str]:
    held = {(p.content_type.app_label, p.codename) for p in user.user_permissions.all()}
    roles = ["admin"] if user.is_staff else []
    roles += [role for role, perms in ROLE_PERMISSIONS.items() if set(perms) <= held]
    return roles


def _permissions(role: str) -> QuerySet[Permission]:
    q = Q(pk__in=[])
    for app_label, codename in ROLE_PERMISSIONS[role]:
        q |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(q)


class MembershipField(serializers.Serializer):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    manager = serializers.BooleanField(required=False, default=False, help_text="They manage this team.")
    tier = serializers.IntegerField(source="team.tier", read_only=True)


class HoldField(ValidityDates):
    """One qualification the person holds; the dates validate as the configuration file's holders do."""

    qualification = serializers.SlugRelatedField(slug_field="slug", queryset=Qualification.objects.all())


def holds_of(user: Any) -> list[dict[str, Any]]:
    return sorted(
        (
            {"qualification": h.qualification.slug, "valid_from": h.valid_from, "valid_until": h.valid_until}
            for h in user.qualification_holds.all()
        ),
        key=lambda h: h["qualification"],
    )


class UserSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(
        max_length=200, required=False, allow_null=True, help_text="The person's id in your directory."
    )
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=ROLES), required=False, help_text="admin: Django admin and"
        " configuration; user_manager: manages people; privacy_officer: sees who reported confidentially.",
    )  # fmt: skip
    teams = MembershipField(many=True, required=False, help_text="Every team they belong to (replaces).")
    qualifications = HoldField(
        many=True, required=False, help_text="Every qualification they hold (replaces)."
    )
    password = serializers.CharField(
        write_only=True, required=False, max_length=4096, trim_whitespace=False,
        help_text="Sets a password (revokes their API tokens). Leave out for single sign-on.",
    )  # fmt: skip

    class Meta:
        model = User
        fields = [
            "username", "email", "first_name", "last_name", "external_id", "is_active", "is_superuser",
            "roles", "teams", "qualifications", "password", "date_joined", "last_login",
        ]  # fmt: skip
        read_only_fields = ["is_active", "is_superuser", "date_joined", "last_login"]
        extra_kwargs: dict[str, Any] = {"email": {"required": True, "allow_blank": False}}

    @property
    def _readable_fields(self) -> Any:
        # These four are written through their own rows (below) and read the same way, not as attributes.
        return (f for f in super()._readable_fields if f.field_name not in COMPUTED)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        directory = getattr(instance, "directory", None)  # the reverse one-to-one raises AttributeError
        data["external_id"] = directory.external_id if directory is not None else None
        data["roles"] = roles_of(instance)
        managed = {t.pk for t in instance.managed_teams.all()}
        data["teams"] = sorted(
            (
                {"team": m.team.slug, "manager": m.team_id in managed, "tier": m.team.tier}
                for m in instance.memberships.all()
            ),
            key=lambda m: m["team"],
        )
        data["qualifications"] = [
            {**h, "valid_from": _iso(h["valid_from"]), "valid_until": _iso(h["valid_until"])}
            for h in holds_of(instance)
        ]
        return data

    def validate_email(self, value: str) -> str:
        clash = User.objects.filter(email__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("Another person has this address.")
        return value

    def validate_external_id(self, value: str | None) -> str | None:
        if value:
            clash = DirectoryIdentity.objects.filter(external_id=value)
            if self.instance is not None:
                clash = clash.exclude(user_id=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError("Another person has this external id.")
        return value or None

    def validate_qualifications(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        slugs = [h["qualification"].slug for h in value]
        if len(slugs) != len(set(slugs)):
            raise serializers.ValidationError("A qualification is listed twice.")
        return value

    def validate_teams(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        slugs = [m["team"].slug for m in value]
        if len(slugs) != len(set(slugs)):
            raise serializers.ValidationError("A team is listed twice.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        request = self.context.get("request")
        actor = request.user if request is not None else None
        if "roles" in attrs and not is_desk_admin(actor):
            current = roles_of(self.instance) if self.instance is not None else []
            if sorted(set(attrs["roles"])) != sorted(current):
                raise serializers.ValidationError({"roles": ["Only administrators change roles."]})
        if attrs.get("password") is not None:
            probe = self.instance or User(username=attrs.get("username", ""), email=attrs.get("email", ""))
            try:
                password_validation.validate_password(attrs["password"], probe)
            except DjangoValidationError as error:
                raise serializers.ValidationError({"password": list(error.messages)}) from error
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Any:
        related: dict[str, Any] = {
            k: validated_data.pop(k)
            for k in ("external_id", "roles", "teams", "qualifications")
            if k in validated_data
        }
        password = validated_data.pop("password", None)
        user = User(**validated_data)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        self._related(user, related)
        return user

    @transaction.atomic
    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        related: dict[str, Any] = {
            k: validated_data.pop(k)
            for k in ("external_id", "roles", "teams", "qualifications")
            if k in validated_data
        }
        password = validated_data.pop("password", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if password:
            instance.set_password(password)
        instance.save()
        self._related(instance, related)
        return instance

    def _related(self, user: Any, related: dict[str, Any]) -> None:
        if "external_id" in related:
            DirectoryIdentity.objects.filter(user=user).exclude(
                external_id=related["external_id"] or ""
            ).delete()
            if related["external_id"]:
                DirectoryIdentity.objects.get_or_create(user=user, external_id=related["external_id"])
        if "roles" in related:
            wanted = set(related["roles"])
            if user.is_staff != ("admin" in wanted):
                user.is_staff = "admin" in wanted
                user.save(update_fields=["is_staff"])
            for role in ROLE_PERMISSIONS:
                perms = list(_permissions(role))
                if role in wanted:
                    user.user_permissions.add(*perms)
                else:
                    user.user_permissions.remove(*perms)
        if "teams" in related:
            wanted_teams = {m["team"].pk: m.get("manager", False) for m in related["teams"]}
            Membership.objects.filter(user=user).exclude(team_id__in=wanted_teams).delete()
            present = set(Membership.objects.filter(user=user).values_list("team_id", flat=True))
            Membership.objects.bulk_create(
                Membership(team_id=pk, user=user) for pk in sorted(set(wanted_teams) - present)
            )
            manages = [pk for pk, manager in wanted_teams.items() if manager]
            Team.objects.filter(manager=user).exclude(pk__in=manages).update(manager=None)
            Team.objects.filter(pk__in=manages).update(manager=user)
        if "qualifications" in related:
            wanted_holds = {h["qualification"].pk: h for h in related["qualifications"]}
            QualificationHolder.objects.filter(user=user).exclude(qualification_id__in=wanted_holds).delete()
            for pk, hold in wanted_holds.items():
                QualificationHolder.objects.update_or_create(
                    user=user,
                    qualification_id=pk,
                    defaults={"valid_from": hold.get("valid_from"), "valid_until": hold.get("valid_until")},
                )
        for cached in ("_perm_cache", "_user_perm_cache", "_desk_user"):
            user.__dict__.pop(cached, None)


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at"]
        read_only_fields = fields


class UserFilter(filters.FilterSet):
    q = filters.CharFilter(
        method="filter_q", max_length=200, help_text="Part of the username, name or e-mail."
    )
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    external_id = filters.CharFilter(field_name="directory__external_id")
    team = filters.CharFilter(field_name="memberships__team__slug")
    is_active = filters.BooleanFilter()

    class Meta:
        model = User
        fields: list[str] = []

    def filter_q(self, qs: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return qs.filter(
            Q(username__icontains=value) | Q(email__icontains=value) | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
        )  # fmt: skip


class UserPagination(CursorPagination):
    ordering = "username"


def users_queryset() -> QuerySet[Any]:
    return User.objects.select_related("directory").prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.select_related("team")),
        "managed_teams",
        Prefetch("qualification_holds", queryset=QualificationHolder.objects.select_related("qualification")),
        Prefetch("user_permissions", queryset=Permission.objects.select_related("content_type")),
    )


class SyncResult(UserSerializer):
    changed = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "changed"]


@extend_schema_view(retrieve=extend_schema(responses={200: UserSerializer, 404: ERRORS[404]}))
class UserViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    serializer_class = UserSerializer
    permission_classes = [permissions.IsAuthenticated, CanManageUsers]
    filter_backends = [DjangoFilterBackend]
    filterset_class = UserFilter
    pagination_class = UserPagination
    lookup_field = "username"
    lookup_value_regex = r"[\w.@+-]+"

    def get_queryset(self) -> QuerySet[Any]:
        return users_queryset().distinct()

    def get_object(self) -> Any:
        user = self.get_queryset().filter(username=self.kwargs["username"]).first()
        if user is None:
            raise Http404("No such person.")
        return user

    def _check_may_change(self, target: Any) -> None:
        actor = self.request.user
        if target.is_superuser and not actor.is_superuser:
            raise PermissionDenied("Only a superuser changes a superuser.")
        if roles_of(target) and not is_desk_admin(actor):
            # A user manager resetting an admin's or a privacy officer's password would become them.
            raise PermissionDenied("Only administrators change people who hold a role.")

    def _fresh(self, user: Any) -> dict[str, Any]:
        return plain(UserSerializer(users_queryset().get(pk=user.pk)).data)

    @extend_schema(responses={201: UserSerializer, 400: ERRORS[400]})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            user = serializer.save()
            record_change(actor=request.user, obj=user, action="create")
        return Response(self._fresh(user), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: UserSerializer, 400: ERRORS[400], 404: ERRORS[404]})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        target = self.get_object()
        self._check_may_change(target)
        with transaction.atomic():
            target = users_queryset().select_for_update(of=("self",)).get(pk=target.pk)
            changed = self._save(target, request.data, partial=partial)
        return Response(self._fresh(target) if not changed else changed[1])

    def _save(self, target: Any, data: Any, *, partial: bool) -> tuple[list[str], dict[str, Any]] | None:
        """Save and audit; None when nothing changed (then nothing is written or recorded)."""
        before = self._fresh(target)
        serializer = self.get_serializer(target, data=data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        after = self._fresh(target)
        fields = changed_fields(before, after)
        if "password" in serializer.validated_data:
            fields.append("password")
        if not fields:
            return None
        record_change(actor=self.request.user, obj=target, action="change", fields=fields)
        return fields, after

    @extend_schema(
        request=UserSerializer,
        responses={
            200: SyncResult,
            201: SyncResult,
            400: ERRORS[400],
            409: OpenApiResponse(description="`conflict`"),
        },
    )
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        """Create or update one person, found by `external_id` (when given) or else by `email`.

        Idempotent: the same body twice changes nothing the second time (`changed` is empty and no audit row
        is written). Fields left out keep their values; `teams`, `roles` and `qualifications`, when given,
        replace. A new person's `username` defaults to their e-mail address.
        """
        data = request.data if isinstance(request.data, dict) else {}
        external_id = data.get("external_id")
        email = data.get("email")
        if not external_id and not email:
            raise serializers.ValidationError({"email": ["Give external_id or email to find the person by."]})
        with transaction.atomic():
            target = None
            if external_id and isinstance(external_id, str):
                target = users_queryset().filter(directory__external_id=external_id).first()
            if target is None and email and isinstance(email, str):
                matches = list(users_queryset().filter(email__iexact=email)[:2])
                if len(matches) > 1:
                    return Response(
                        {
                            "detail": "Several people have this e-mail address; give external_id.",
                            "code": "conflict",
                        },
                        status=status.HTTP_409_CONFLICT,
                    )
                target = matches[0] if matches else None
            if target is None:
                body = {"username": email, **data} if email else dict(data)
                serializer = self.get_serializer(data=body)
                serializer.is_valid(raise_exception=True)
                user = serializer.save()
                record_change(actor=request.user, obj=user, action="create", note="directory sync")
                result = self._fresh(user)
                return Response({**result, "changed": sorted(result)}, status=status.HTTP_201_CREATED)
            self._check_may_change(target)
            target = users_queryset().select_for_update(of=("self",)).get(pk=target.pk)
            changed = self._save(target, data, partial=True)
        if changed is None:
            return Response({**self._fresh(target), "changed": []})
        return Response({**changed[1], "changed": changed[0]})

    @extend_schema(request=None, responses={200: UserSerializer, 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, username: str | None = None) -> Response:
        """They can no longer sign in; their API tokens are revoked and they leave their teams. Their
        incidents, comments and history stay. Deactivating twice changes nothing the second time."""
        target = self.get_object()
        self._check_may_change(target)
        if target.pk == request.user.pk:
            raise serializers.ValidationError({"username": ["You cannot deactivate yourself."]})
        with transaction.atomic():
            target = User.objects.select_for_update().get(pk=target.pk)
            if target.is_active:
                teams = sorted(Membership.objects.filter(user=target).values_list("team__slug", flat=True))
                target.is_active = False
                target.save(update_fields=["is_active"])
                Membership.objects.filter(user=target).delete()
                Team.objects.filter(manager=target).update(manager=None)
                ApiToken.objects.filter(user=target).delete()
                record_change(
                    actor=request.user, obj=target, action="change", fields=["is_active", "teams"],
                    note=f"deactivated; left {', '.join(teams) or 'no team'}; tokens revoked",
                )  # fmt: skip
        return Response(self._fresh(target))

    @extend_schema(request=None, responses={200: UserSerializer, 404: ERRORS[404]})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, username: str | None = None) -> Response:
        """They may sign in again (teams and roles are given back through an update)."""
        target = self.get_object()
        self._check_may_change(target)
        with transaction.atomic():
            target = User.objects.select_for_update().get(pk=target.pk)
            if not target.is_active:
                target.is_active = True
                target.save(update_fields=["is_active"])
                record_change(actor=request.user, obj=target, action="change", fields=["is_active"])
        return Response(self._fresh(target))

    @extend_schema(responses={200: TokenSerializer(many=True), 404: ERRORS[404]})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def tokens(self, request: Request, username: str | None = None) -> Response:
        """Their API tokens (never the keys)."""
        target = self.get_object()
        return Response(TokenSerializer(ApiToken.objects.filter(user=target), many=True).data)

    @extend_schema(request=None, responses={204: None, 404: ERRORS[404]})
    @action(
        detail=True, methods=["delete"], url_path=r"tokens/(?P<token_id>\d+)", url_name="token",
        filter_backends=[], pagination_class=None,
    )  # fmt: skip
    def revoke_token(
        self, request: Request, username: str | None = None, token_id: str | None = None
    ) -> Response:
        """Revoke one of their tokens: it stops working at once."""
        target = self.get_object()
        self._check_may_change(target)
        return revoke(request.user, ApiToken.objects.filter(user=target, pk=int(token_id or 0)).first())


def revoke(actor: Any, token: ApiToken | None) -> Response:
    if token is None:
        raise Http404("No such token.")
    with transaction.atomic():
        record_change(actor=actor, obj=token, action="delete")
        token.delete()
    return Response(status=status.HTTP_204_NO_CONTENT)
