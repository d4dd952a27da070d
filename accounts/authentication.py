"""`Authorization: Token <key>` against the hashed keys of accounts.ApiToken."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken

# Writing last_used_at on every request would turn every read into a write; once a minute is enough to
# tell a token in use from a forgotten one.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and error messages, with the key looked up by its SHA-256."""

    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = ApiToken.objects.by_key(key).select_related("user").first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        return super().authenticate(request)
