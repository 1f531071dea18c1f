from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from curation.models import Snapshot
from feedback.models import Project
from training.models import ModelVersion


class SelectionPolicy(models.TextChoices):
    RANDOM = "random", "Random pairs"
    UNCERTAINTY = "uncertainty", "Where the reward model is least sure"
    COMMITTEE = (
        "committee",
        "Experimental: where recent reward-model versions disagree (below random in the simulation)",
    )
    IMPORTANCE = (
        "importance",
        "Experimental: drawn by uncertainty, weighted by 1/chance (no better than random in the simulation)",
    )
    CONTRAST = (
        "contrast",
        "Where the reward model is least sure and the replies' contents differ most",
    )
    INFORMATION = "information", "Experimental: most informative pairs (worse than random in the simulation)"
    NEW_VS_OLD = "new_vs_old", "New model against the previous one"


class PipelineSettings(models.Model):
    """Per-project knobs for the retraining loop."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="pipeline_settings")
    enabled = models.BooleanField(default=True)
    min_new_items = models.PositiveIntegerField(
        default=50, help_text="Retrain once this many new judgments or kept demonstrations arrived."
    )
    max_age_hours = models.PositiveIntegerField(
        default=24, help_text="Retrain at least this often while any new data arrived."
    )
    candidates_per_prompt = models.PositiveSmallIntegerField(default=2)
    prompts_per_run = models.PositiveIntegerField(default=20)
    tasks_per_run = models.PositiveIntegerField(default=50)
    selection_policy = models.CharField(
        max_length=16,
        choices=SelectionPolicy.choices,
        # From session 13: contrast beat plain uncertainty in the simulation on two sets of fresh
        # seeds (docs/flywheel.md). Projects made before keep the policy they have.
        default=SelectionPolicy.CONTRAST,
    )
    best_of_n = models.PositiveSmallIntegerField(
        default=0,
        help_text="Above 1: keep the reward model's best of n samples as a model-written demonstration.",
    )
    reward_base = models.CharField(
        max_length=500, blank=True, default="", help_text="Blank: the default base."
    )
    policy_base = models.CharField(
        max_length=500, blank=True, default="", help_text="Blank: the default base."
    )
    reward_warm_start = models.BooleanField(
        default=False,
        help_text="Train each reward model from the deployed one's weights instead of the base. "
        "Taken only while the deployed model descends from the configured base.",
    )
    policy_warm_start = models.BooleanField(
        default=False,
        help_text="Train each instruction model from the deployed one's weights instead of the base. "
        "Taken only while the deployed model descends from the configured base.",
    )
    reward_config = models.JSONField(default=dict, blank=True)
    policy_config = models.JSONField(default=dict, blank=True)
    generation_max_new_tokens = models.PositiveIntegerField(default=128)

    def __str__(self) -> str:
        return f"Pipeline settings for {self.project}"

    def clean(self) -> None:
        """The checks the admin form and the API share (django's full_clean calls this)."""
        from pathlib import Path

        from training.config import train_options_check

        errors: dict[str, str] = {}
        for name, low, high in (
            ("min_new_items", 1, 1_000_000),
            ("max_age_hours", 1, 24 * 365),
            ("candidates_per_prompt", 1, 16),
            ("prompts_per_run", 1, 100_000),
            ("tasks_per_run", 1, 100_000),
            ("generation_max_new_tokens", 1, 4096),
        ):
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                errors[name] = f"must be from {low} to {high}"
        if self.best_of_n is not None and (self.best_of_n == 1 or self.best_of_n > 64):
            errors["best_of_n"] = "must be 0 (off) or from 2 to 64"
        for name in ("reward_base", "policy_base"):
            folder = getattr(self, name)
            if folder and not Path(folder).is_dir():
                errors[name] = f"no model folder at {folder} (blank for the default base)"
        for name, kind in (("reward_config", "reward"), ("policy_config", "policy")):
            try:
                train_options_check(kind, getattr(self, name))
            except (ValueError, TypeError) as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class PipelineRun(models.Model):
    """One turn of the wheel. The partial unique constraint is the lock: a project can have
    at most one queued or running run, whoever tries to start a second."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pipeline_runs")
    trigger = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    steps = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reward_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_pipeline_run_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"Pipeline run {self.pk} ({self.status})"

    def step(self, name: str) -> dict[str, object] | None:
        return next((s for s in self.steps if s.get("name") == name), None)
