"""A password change revokes every API token of the person (a stolen token dies with the old password)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import ApiToken


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts_revoke_tokens_on_password")
def revoke_tokens_on_password_change(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # AbstractBaseUser.set_password keeps the raw password in `_password` until the save that stores it:
    # set here, the save being signalled is a password change (admin, password-change form, API, shell).
    if not created and getattr(instance, "_password", None) is not None:
        ApiToken.objects.filter(user_id=instance.pk).delete()
