from __future__ import annotations

from django.conf import settings
from django.db import models

from feedback.models import Project


class CurationSettingsRevision(models.Model):
    """A project's curation thresholds as they were before a change made in the console, so a
    curator can put them back ("restore previous") after seeing what a change did."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    rule_overrides = models.JSONField(default=dict, blank=True)
    near_dup_threshold = models.FloatField()
    # Who made the change that replaced these settings, and why.
    replaced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return f"settings of project {self.project_id} before {self.created_at:%Y-%m-%d %H:%M}"
