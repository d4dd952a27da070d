"""API tokens (many per person, stored hashed) and the directory identity of a person."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def by_key(self, key: str) -> ApiTokenQuerySet:
        return self.filter(key_hash=hash_key(key))


class ApiToken(models.Model):
    """A key for `Authorization: Token <key>`. Only its SHA-256 is stored: the key is shown once, at creation.

    Its owner and the desk's admins list and revoke tokens; a password change revokes all of a person's.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="api", help_text=_("What it is for (a script, a tool)."))
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text=_("The key's first characters."))
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user: Any, *, name: str = "api") -> tuple[ApiToken, str]:
        """A new token and its key (the only time the key is known)."""
        key = secrets.token_hex(20)
        token = cls.objects.create(user=user, name=name, key_hash=hash_key(key), prefix=key[:8])
        return token, key


class DirectoryIdentity(models.Model):
    """The id a person has in the organisation's directory, so that an hourly sync finds them again."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory")
    external_id = models.CharField(max_length=200, unique=True)

    class Meta:
        verbose_name_plural = "directory identities"

    def __str__(self) -> str:
        return self.external_id
