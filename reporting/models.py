"""What reporting keeps: which weekly digests were sent, so that each goes out once."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class DigestSent(models.Model):
    """One weekly digest e-mailed to one manager. The unique pair makes a second run a no-op."""

    manager = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week = models.DateField(help_text="The Monday the reported week starts on (desk time zone).")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-week", "manager"]
        constraints = [models.UniqueConstraint(fields=["manager", "week"], name="digest_once_per_week")]

    def __str__(self) -> str:
        return f"digest {self.week} to {self.manager_id}"
