"""`POST /api/v1/auth/token/`: a new API token for a username and password, behind django-axes' lockout."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from .audit import record_change
from .models import ApiToken


class TokenRequest(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, required=False, default="api", help_text="What it is for.")


class TokenResponse(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once: only its hash is kept.")
    id = serializers.IntegerField()
    name = serializers.CharField()


LOCKED_OUT = OpenApiResponse(description="Too many failed attempts: locked out for a while (`throttled`)")


def locked_out_response() -> Response:
    return Response(
        {"detail": "Too many failed sign-in attempts; try again later.", "code": "throttled"},
        status=status.HTTP_429_TOO_MANY_REQUESTS,
    )


class ObtainTokenView(APIView):
    """A new token for the person; each call makes another (list and revoke them under `/api/v1/me/tokens/`)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=TokenRequest,
        responses={
            200: TokenResponse,
            400: OpenApiResponse(description="Wrong credentials"),
            429: LOCKED_OUT,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = TokenRequest(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request, not DRF's wrapper: django-axes reads the client address from it and marks it
        # locked out there (AxesMiddleware then answers with accounts.lockout.lockout_response).
        django_request = request._request
        user = authenticate(
            django_request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if getattr(django_request, "axes_locked_out", False):
            return locked_out_response()
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to log in with those credentials."]}
            )
        with transaction.atomic():
            token, key = ApiToken.issue(user, name=data.validated_data["name"])
            record_change(actor=user, obj=token, action="create", note="issued by auth/token")
            _trim(user)
        return Response({"token": key, "id": token.pk, "name": token.name})


def _trim(user: Any) -> None:
    """Keep at most API_TOKENS_PER_USER: the least recently used beyond go (a script that signs in on every
    run would otherwise pile up tokens without end)."""
    limit = settings.API_TOKENS_PER_USER
    ids = list(
        ApiToken.objects.filter(user=user)
        .order_by("-last_used_at", "-created_at", "-id")
        .values_list("pk", flat=True)[limit:]
    )
    if ids:
        ApiToken.objects.filter(pk__in=ids).delete()
