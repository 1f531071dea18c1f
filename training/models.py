from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from curation.models import Snapshot
from feedback.models import Project


class ModelKind(models.TextChoices):
    POLICY = "policy", "Instruction model (policy)"
    REWARD = "reward", "Reward model"


class VersionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    TRAINING = "training", "Training"
    FAILED = "failed", "Failed"
    EVALUATED = "evaluated", "Evaluated"
    PROMOTED = "promoted", "Promoted"
    REJECTED = "rejected", "Rejected"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    number = models.PositiveIntegerField()
    base = models.CharField(max_length=500, help_text="The base model folder or name it was trained from.")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The version whose weights training continued from (warm start); blank when it "
        "started from the base. Its data is part of this version's lineage.",
    )
    snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="model_versions"
    )
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True, default="")
    artifact_sha256 = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "number"], name="model_version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.number}"


class Deployment(models.Model):
    """Which version serves a project's kind. Exactly one row per (project, kind) is active
    (ended_at is null); the rest are the history."""

    class Action(models.TextChoices):
        PROMOTE = "promote", "Promoted by the gate"
        FORCE = "force_promote", "Force-promoted"
        ROLLBACK = "rollback", "Rolled back"
        INITIAL = "initial", "Initial base model"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deployments")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"], condition=Q(ended_at__isnull=True), name="one_active_deployment"
            ),
        ]


class GateDecision(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="gate_decisions")
    against = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    passed = models.BooleanField()
    forced = models.BooleanField(default=False)
    rule = models.CharField(max_length=300)
    numbers = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]


class RewardGateRule(models.TextChoices):
    MARGIN = "margin", "Beat the deployed model by a margin"
    NOT_WORSE = "not_worse", "Promote unless significantly worse than the deployed model"


class GateSettings(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="gate_settings")
    reward_rule = models.CharField(
        max_length=16, choices=RewardGateRule.choices, default=RewardGateRule.MARGIN
    )
    reward_min_gain_points = models.FloatField(
        default=1.0, help_text="Accuracy points over the deployed model (the margin rule)."
    )
    reward_use_gold = models.BooleanField(
        default=True,
        help_text=(
            "Judge reward models on the project's gold comparisons as well as the validation split: "
            "their answers are known and no model trains on them."
        ),
    )
    policy_min_ci_low = models.FloatField(default=0.5, help_text="Win-rate CI lower bound must exceed this.")
    policy_eval_prompts = models.PositiveIntegerField(default=32)
