from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    overlap_k = models.PositiveSmallIntegerField(default=3, help_text="Judgments wanted per comparison task.")
    gold_rate = models.FloatField(default=0.1, help_text="Share of served tasks that are gold.")
    lease_seconds = models.PositiveIntegerField(default=600)
    compare_enabled = models.BooleanField(default=True)
    write_enabled = models.BooleanField(default=True)
    # Showing the reward model's guess anchors annotators, so it is off unless asked for.
    show_suggestions = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="project_overlap_k_min_1"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(condition=Q(lease_seconds__gte=10), name="project_lease_min_10s"),
        ]

    def __str__(self) -> str:
        return self.name


class PromptSource(models.TextChoices):
    HUMAN = "human", "Written by an annotator"
    IMPORTED = "imported", "Imported"
    SEED = "seed", "Seed data"


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    source = models.CharField(max_length=16, choices=PromptSource.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    external_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="prompt_unique_external_id",
            ),
            models.CheckConstraint(condition=~Q(text=""), name="prompt_text_not_empty"),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class ResponseSource(models.TextChoices):
    DEMONSTRATION = "demonstration", "Human demonstration"
    MODEL = "model", "Model"
    IMPORTED = "imported", "Imported"
    SEED = "seed", "Seed data"


class Response(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="responses")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    source = models.CharField(max_length=16, choices=ResponseSource.choices)
    # The producing model, by name; training links model-written responses to a version.
    model_name = models.CharField(max_length=200, blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    external_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="response_unique_external_id",
            ),
            models.CheckConstraint(condition=~Q(text=""), name="response_text_not_empty"),
        ]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def is_demonstration(self) -> bool:
        return self.source == ResponseSource.DEMONSTRATION


class Choice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Strength(models.TextChoices):
    SLIGHT = "slight", "Slightly"
    CLEAR = "clear", "Clearly"


class ComparisonTask(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    response_a = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    priority = models.FloatField(default=0.0, db_index=True)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.CharField(max_length=16, choices=Choice.choices, blank=True, default="")
    # The reward model's predicted P(A preferred), shown only where the project allows it.
    suggested_preference = models.FloatField(null=True, blank=True)
    # How much this pair counts in reward training (the snapshot carries it): 1, except for pairs
    # an importance-sampling policy drew, which count by the inverse of their chance of being drawn.
    training_weight = models.FloatField(default=1.0)
    external_id = models.CharField(max_length=200, blank=True, default="")
    # Kept by database triggers on feedback_judgment (migration 0003), so no writer can miss
    # it. Next-task filters on it instead of counting judgments per candidate; the seat check
    # under the row lock still counts the rows themselves.
    judgment_count = models.PositiveIntegerField(default=0, editable=False)
    # judgment_count < project.overlap_k, kept by the same triggers and by one on the project's
    # overlap_k (migration 0004). The queue index holds only these tasks, so a next-task never
    # walks past the judged ones, however many there are.
    wants_judgments = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "id"]
        indexes = [
            models.Index(fields=["project", "is_gold", "-priority", "id"]),
            models.Index(
                fields=["project", "-priority", "id"],
                condition=Q(wants_judgments=True, is_gold=False),
                name="task_queue",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(response_a=models.F("response_b")), name="task_two_different_responses"
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False) | ~Q(gold_answer=""), name="task_gold_has_answer"
            ),
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="task_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Task {self.pk} ({self.project_id})"


class AssignmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Side(models.TextChoices):
    A = "a", "A"
    B = "b", "B"


class Assignment(models.Model):
    """A lease on one task for one annotator. A lease counts against the task's overlap
    until it is submitted, skipped, or its expires_at passes."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, choices=AssignmentState.choices, default=AssignmentState.ACTIVE)
    # Which response is drawn on the left, drawn per lease to cancel position bias.
    left_side = models.CharField(max_length=1, choices=Side.choices)
    skip_reason = models.CharField(max_length=500, blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-leased_at"]
        indexes = [
            models.Index(fields=["task", "state", "expires_at"]),
            # Next-task first looks for a lease the annotator still holds.
            models.Index(
                fields=["annotator"], condition=Q(state="active"), name="assignment_active_annotator"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"],
                condition=Q(state="active"),
                name="assignment_one_active_per_annotator_task",
            ),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} task={self.task_id} user={self.annotator_id}"


class JudgmentSource(models.TextChoices):
    UI = "ui", "Web UI"
    API = "api", "API"
    IMPORT = "import", "Import"


class Judgment(models.Model):
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments"
    )
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    choice = models.CharField(max_length=16, choices=Choice.choices)
    strength = models.CharField(max_length=8, choices=Strength.choices, blank=True, default="")
    rationale = models.TextField(blank=True, default="")
    left_side = models.CharField(max_length=1, choices=Side.choices, blank=True, default="")
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=16, choices=JudgmentSource.choices, default=JudgmentSource.UI)
    external_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="judgment_one_per_task_annotator"),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="judgment_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=[c.value for c in Choice]), name="judgment_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__in=["", *[s.value for s in Strength]]),
                name="judgment_strength_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Judgment {self.pk}: {self.choice}"
