"""`/api/v1/me/`: for everyone signed in. Their profile and teams, and their API tokens (list, create, revoke)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import changed_fields, record_change
from accounts.models import ApiToken
from incidents.deskconfig import plain

from .users import HoldField, TokenSerializer, holds_of, revoke, roles_of, users_queryset
from .views import ERRORS


def _owner(request: Request) -> Any:
    """The signed-in person (IsAuthenticated has run: never the anonymous user)."""
    return request.user


class MyTeam(serializers.Serializer):
    team = serializers.CharField(help_text="The team's slug.")
    name = serializers.CharField()
    tier = serializers.IntegerField()
    manager = serializers.BooleanField(help_text="They manage it.")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True, help_text="Changed by an administrator or the directory.")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)
    teams = MyTeam(many=True, read_only=True)
    qualifications = HoldField(many=True, read_only=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        managed = {t.pk for t in instance.managed_teams.all()}
        return {
            "username": instance.get_username(),
            "email": instance.email,
            "first_name": instance.first_name,
            "last_name": instance.last_name,
            "roles": roles_of(instance),
            "teams": sorted(
                (
                    {
                        "team": m.team.slug,
                        "name": m.team.name,
                        "tier": m.team.tier,
                        "manager": m.team_id in managed,
                    }
                    for m in instance.memberships.all()
                ),
                key=lambda t: t["team"],
            ),
            "qualifications": holds_of(instance),
        }


class NewToken(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="api", help_text="What it is for.")


class IssuedToken(TokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The key: shown this once, only its hash is kept."
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class MeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def _me(self, request: Request) -> Any:
        return users_queryset().get(pk=request.user.pk)

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(self._me(request)).data)

    @extend_schema(request=MeSerializer, responses={200: MeSerializer, 400: ERRORS[400]})
    def patch(self, request: Request) -> Response:
        """Change your own name."""
        serializer = MeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            me = self._me(request)
            before = plain(MeSerializer(me).data)
            for name, value in serializer.validated_data.items():
                setattr(me, name, value)
            fields = changed_fields(before, plain(MeSerializer(me).data))
            if fields:
                me.save(update_fields=fields)
                record_change(actor=request.user, obj=me, action="change", fields=fields)
        return Response(MeSerializer(me).data)


class MyTokensView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        """Your API tokens (never their keys)."""
        return Response(TokenSerializer(ApiToken.objects.filter(user=_owner(request)), many=True).data)

    @extend_schema(request=NewToken, responses={201: IssuedToken, 400: ERRORS[400]})
    def post(self, request: Request) -> Response:
        """A new token; its key is in this answer only."""
        data = NewToken(data=request.data)
        data.is_valid(raise_exception=True)
        if ApiToken.objects.filter(user=_owner(request)).count() >= settings.API_TOKENS_PER_USER:
            raise serializers.ValidationError(
                {"name": [f"You have {settings.API_TOKENS_PER_USER} tokens already; revoke one first."]}
            )
        with transaction.atomic():
            token, key = ApiToken.issue(request.user, name=data.validated_data["name"])
            record_change(actor=request.user, obj=token, action="create")
        return Response({**TokenSerializer(token).data, "token": key}, status=status.HTTP_201_CREATED)


class MyTokenView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, 404: ERRORS[404]})
    def delete(self, request: Request, token_id: int) -> Response:
        """Revoke one of your tokens (the one you are using, too): it stops working at once."""
        return revoke(request.user, ApiToken.objects.filter(user=_owner(request), pk=token_id).first())
