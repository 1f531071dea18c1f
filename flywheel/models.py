from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    CURATOR = "curator", "Curator"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    # Trust in [0, 1] weights this annotator's votes in aggregated preferences. It is
    # recomputed from gold accuracy and agreement by feedback.services.annotator_trust_refresh.
    trust = models.FloatField(default=1.0)
    trust_updated_at = models.DateTimeField(null=True, blank=True)
    # Curators can keep a person's judgments out of future snapshots without deleting them.
    judgments_excluded = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(trust__gte=0) & models.Q(trust__lte=1), name="user_trust_0_1"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]

    @property
    def is_curator(self) -> bool:
        return self.role in (Role.CURATOR, Role.ADMIN)

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN


class AuditLog(models.Model):
    """Who changed what, when, from what to what, and why. Written by services only."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
