from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.models import ComparisonTask, Judgment, Project, Prompt, Response


def _new_epoch() -> str:
    return uuid.uuid4().hex


class CurationSettings(models.Model):
    """Per-project thresholds. Rule overrides are keyed by kind, then by rule threshold name
    (see curation.rules.RuleThresholds); anything absent uses the documented default."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="curation_settings")
    rule_overrides = models.JSONField(default=dict, blank=True)
    near_dup_threshold = models.FloatField(default=0.8)
    representative_policy = models.CharField(
        max_length=16,
        choices=[("earliest", "Earliest"), ("quality", "Best quality score")],
        default="earliest",
    )
    classifier_min_labels = models.PositiveIntegerField(default=200)
    classifier_reject_below = models.FloatField(default=0.2)
    classifier_review_below = models.FloatField(default=0.5)
    preference_min_agreement = models.FloatField(default=0.6)
    validation_percent = models.PositiveSmallIntegerField(default=10)
    # Advanced under this row's lock each time an item enters the near-duplicate index.
    dedup_seq = models.PositiveBigIntegerField(default=0)
    # Names this project's shared LSH index in Redis. Random, so a restored or recreated
    # database never reads another database's index under the same project id.
    index_epoch = models.CharField(max_length=32, default=_new_epoch, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(near_dup_threshold__gt=0) & Q(near_dup_threshold__lte=1),
                name="curation_threshold_0_1",
            ),
            models.CheckConstraint(
                condition=Q(validation_percent__lte=50), name="curation_validation_max_50"
            ),
        ]


class ItemKind(models.TextChoices):
    PROMPT = "prompt", "Prompt"
    RESPONSE = "response", "Response"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    KEPT = "kept", "Kept"
    REJECTED = "rejected", "Rejected"
    NEEDS_REVIEW = "needs_review", "Needs review"


class CurationDecision(models.Model):
    """The pipeline's verdict on one prompt or response, with every measurement behind it.

    `status` is what counts. A curator override sets `override_status`, which then wins over
    whatever the pipeline measures on later runs.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="curation_decisions")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    prompt = models.OneToOneField(
        Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="curation"
    )
    response = models.OneToOneField(
        Response, null=True, blank=True, on_delete=models.CASCADE, related_name="curation"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    pipeline_status = models.CharField(max_length=16, choices=Status.choices, blank=True, default="")
    reasons = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, blank=True)
    pii = models.JSONField(default=list, blank=True)
    exact_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    signature = models.BinaryField(null=True, blank=True)
    signature_scheme = models.CharField(max_length=200, blank=True, default="")
    shingles = models.BinaryField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True)
    # The cluster this item belongs to, named by its representative (itself if it is one).
    cluster_representative = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="cluster_members"
    )
    duplicate_jaccard = models.FloatField(null=True, blank=True)
    quality_score = models.FloatField(null=True, blank=True)
    pipeline_version = models.CharField(max_length=32, blank=True, default="")
    override_status = models.CharField(max_length=16, choices=Status.choices, blank=True, default="")
    override_reason = models.TextField(blank=True, default="")
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    # A worker claims pending rows by stamping its token; a crash leaves the stamp, and the
    # claim expires so another worker picks the rows up.
    claim_token = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    dedup_seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "kind", "dedup_seq"]),
            models.Index(fields=["project", "status"]),
            models.Index(fields=["project", "kind", "exact_hash"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="prompt", prompt__isnull=False, response__isnull=True))
                | (Q(kind="response", response__isnull=False, prompt__isnull=True)),
                name="decision_exactly_one_item",
            ),
            models.CheckConstraint(
                condition=Q(override_status="") | Q(override_status__in=["kept", "rejected"]),
                name="decision_override_kept_or_rejected",
            ),
        ]

    @property
    def item(self) -> Prompt | Response:
        item = self.prompt if self.kind == ItemKind.PROMPT else self.response
        assert item is not None
        return item

    @property
    def is_duplicate(self) -> bool:
        return self.cluster_representative_id is not None and self.cluster_representative_id != self.pk


class Measurement(models.Model):
    """What the pipeline measured on one curated item, as numbers a query can judge under any
    limits. Written with the decision (services._decide_kind), replaced when it is decided again.

    Each rule's value is the one curation.rules.judge compares with its limit, and the counts
    are those the rules' "only from N words/lines" gates read, so whether an item passes under
    other limits is a comparison of columns: the console's threshold preview
    (console/whatif.py) counts what a change would do in one aggregate query instead of
    re-measuring texts. `exact_key` and `minhash_sketch` let it replay duplicate detection at
    another threshold without reading every full signature.
    """

    decision = models.OneToOneField(
        CurationDecision, primary_key=True, on_delete=models.CASCADE, related_name="measurement"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    # One column per rule in curation.rules, named after it.
    word_count = models.FloatField()
    mean_word_length = models.FloatField()
    symbol_ratio = models.FloatField()
    alpha_words = models.FloatField()
    stop_words = models.FloatField()
    dup_line_fraction = models.FloatField()
    dup_paragraph_fraction = models.FloatField()
    top_2gram_coverage = models.FloatField()
    top_3gram_coverage = models.FloatField()
    top_4gram_coverage = models.FloatField()
    bullet_line_ratio = models.FloatField()
    ellipsis_line_ratio = models.FloatField()
    longest_word = models.FloatField()
    keyboard_mash = models.FloatField()
    # What the gates count.
    prose_words = models.PositiveIntegerField()
    lines = models.PositiveIntegerField()
    paragraphs = models.PositiveIntegerField()
    # The first 8 bytes of exact_hash (null when it has none), and curation.dedup.sketch of the
    # MinHash signature.
    exact_key = models.BigIntegerField(null=True, blank=True)
    minhash_sketch = models.BinaryField()


class CurationRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="curation_runs")
    trigger = models.CharField(max_length=32, default="auto")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    items = models.PositiveIntegerField(default=0)
    outcomes = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    @property
    def items_per_second(self) -> float | None:
        return self.items / self.seconds if self.seconds else None


class QualityModel(models.Model):
    """A trained keep/reject classifier over MiniLM embeddings."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_models")
    created_at = models.DateTimeField(auto_now_add=True)
    labels = models.PositiveIntegerField()
    roc_auc = models.FloatField(null=True)
    brier = models.FloatField(null=True)
    ece = models.FloatField(null=True)
    artifact_path = models.CharField(max_length=500)
    artifact_sha256 = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="one_active_quality_model"
            )
        ]


class Snapshot(models.Model):
    """A frozen, versioned dataset. Rows are immutable once written (a database trigger
    refuses updates), and `content_hash` covers the manifest and every export file."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="snapshots")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    manifest = models.JSONField()
    content_hash = models.CharField(max_length=64)
    directory = models.CharField(max_length=500)
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="snapshot_unique_version")]

    def __str__(self) -> str:
        return f"{self.project.name} v{self.version}"


class SnapshotItem(models.Model):
    """Lineage: which prompts, responses, tasks and judgments a snapshot holds, and in which split."""

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALIDATION = "validation", "Validation"

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="items")
    split = models.CharField(max_length=16, choices=Split.choices)
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    response = models.ForeignKey(Response, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(
        ComparisonTask, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    judgments = models.ManyToManyField(Judgment, related_name="snapshot_items", blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["snapshot", "split"])]
