from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ExternalAnnotator(models.Model):
    """Someone known to another system (a dataset's judge, a Label Studio user) and the Flywheel
    user their work is attributed to. Importers create these users with the annotator role and
    no password: they exist to own judgments, not to sign in."""

    # "arena" (Chatbot Arena judges), "dataset" (one per imported dataset), or
    # "label-studio:<url>" (user ids are per Label Studio server).
    namespace = models.CharField(max_length=300)
    key = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "key"], name="external_annotator_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.key}"


class LinkKind(models.TextChoices):
    COMPARISON = "comparison", "Comparisons (pairwise preference)"
    DEMONSTRATION = "demonstration", "Demonstrations (write the ideal answer)"


class LabelStudioLink(models.Model):
    """One Flywheel project's work of one kind, mirrored in one Label Studio project."""

    project = models.ForeignKey(
        "feedback.Project", on_delete=models.CASCADE, related_name="label_studio_links"
    )
    kind = models.CharField(max_length=16, choices=LinkKind.choices)
    url = models.URLField(max_length=500)
    # Kept as given, like any integration credential in the database; the API never returns it.
    token = models.CharField(max_length=500)
    # Empty until the first sync creates the Label Studio project.
    ls_project_id = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    # Set while a sync runs, so a scheduled sync and a "sync now" never push the same tasks twice.
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "kind"], name="ls_link_one_per_project_kind"),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in LinkKind]), name="ls_link_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.kind} -> {self.url} #{self.ls_project_id}"


class LabelStudioTask(models.Model):
    """A Label Studio task and the Flywheel work it shows: a comparison or a prompt."""

    link = models.ForeignKey(LabelStudioLink, on_delete=models.CASCADE, related_name="tasks")
    ls_task_id = models.PositiveBigIntegerField()
    task = models.ForeignKey("feedback.ComparisonTask", null=True, blank=True, on_delete=models.CASCADE)
    prompt = models.ForeignKey("feedback.Prompt", null=True, blank=True, on_delete=models.CASCADE)
    # Which Flywheel response Label Studio shows on the left.
    left_side = models.CharField(max_length=1, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["link", "ls_task_id"], name="ls_task_unique_id"),
            models.UniqueConstraint(
                fields=["link", "task"], condition=Q(task__isnull=False), name="ls_task_one_per_comparison"
            ),
            models.UniqueConstraint(
                fields=["link", "prompt"], condition=Q(prompt__isnull=False), name="ls_task_one_per_prompt"
            ),
            models.CheckConstraint(
                condition=(Q(task__isnull=False) & Q(prompt__isnull=True))
                | (Q(task__isnull=True) & Q(prompt__isnull=False)),
                name="ls_task_comparison_xor_prompt",
            ),
        ]

    def __str__(self) -> str:
        return f"LS task {self.ls_task_id}"


class PulledAs(models.TextChoices):
    JUDGMENT = "judgment", "Judgment"
    SKIP = "skip", "Skip"
    DEMONSTRATION = "demonstration", "Demonstration"


class LabelStudioAnnotation(models.Model):
    """A Label Studio annotation already pulled, and what it became. The annotation's own
    updated_at, kept as Label Studio wrote it, tells the next sync whether it was edited."""

    link = models.ForeignKey(LabelStudioLink, on_delete=models.CASCADE, related_name="annotations")
    ls_annotation_id = models.PositiveBigIntegerField()
    ls_task = models.ForeignKey(LabelStudioTask, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    pulled_as = models.CharField(max_length=16, choices=PulledAs.choices)
    judgment = models.ForeignKey("feedback.Judgment", null=True, blank=True, on_delete=models.SET_NULL)
    response = models.ForeignKey("feedback.Response", null=True, blank=True, on_delete=models.SET_NULL)
    ls_updated_at = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["link", "ls_annotation_id"], name="ls_annotation_unique_id"),
        ]

    def __str__(self) -> str:
        return f"LS annotation {self.ls_annotation_id} -> {self.pulled_as}"
