"""django-axes' lockout check, for sign-ins that come with a request."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class AxesBackend(AxesStandaloneBackend):
    """Axes refuses `authenticate()` without a request; code that checks a password without one (a
    management command, the shell, a test) is no brute-force surface, so it goes on to the next backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
