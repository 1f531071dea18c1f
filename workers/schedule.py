"""Every periodic job, declared once. `manage.py sync_schedule` writes these into
django-celery-beat's tables, where admins can change the intervals in the admin; a sync
never overwrites an interval an admin already changed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int
    description: str
    # With FLYWHEEL_DEMO on (make run), the loop turns while a newcomer watches.
    demo_every_seconds: int | None = None


SCHEDULE: tuple[PeriodicJob, ...] = (
    # Retraining is triggered by new human signal (or age), not by the clock alone: this
    # check is cheap, the run it may start is not.
    PeriodicJob(
        name="Check whether to retrain",
        task="workers.retrain_check",
        every_seconds=300,
        demo_every_seconds=60,
        description="Start a pipeline run for each project with enough new judgments or demonstrations.",
    ),
    # A run whose worker died would hold the project's lock forever; this frees it.
    PeriodicJob(
        name="Reap stalled pipeline runs",
        task="workers.reap_runs",
        every_seconds=900,
        description="Fail pipeline runs with no progress for hours, releasing the per-project lock.",
    ),
    # New text is curated right after it is committed; this sweep catches anything that
    # slipped through (a worker that was down, a lost message).
    PeriodicJob(
        name="Curate pending items",
        task="curation.curate_pending",
        every_seconds=120,
        demo_every_seconds=30,
        description="Curate every project's pending prompts and responses.",
    ),
    # Curators' keep/reject decisions accumulate slowly; hourly is plenty to pick them up.
    PeriodicJob(
        name="Retrain quality classifiers",
        task="curation.train_quality_models",
        every_seconds=3600,
        description="Retrain each project's quality classifier once enough new curator labels exist.",
    ),
    # Leases left open by a closed browser tab go back to the pool, so tasks never stall
    # waiting on an annotator who has gone home.
    PeriodicJob(
        name="Expire stale assignment leases",
        task="feedback.expire_leases",
        every_seconds=60,
        description="Return expired annotation leases to the pool.",
    ),
    # Trust feeds the weighted vote behind every aggregated preference; a few minutes of
    # staleness is harmless, recomputing per judgment would not be.
    PeriodicJob(
        name="Refresh annotator trust",
        task="feedback.refresh_trust",
        every_seconds=300,
        description="Recompute annotator trust from gold accuracy and agreement.",
    ),
    # People annotating in Label Studio should see new tasks, and Flywheel their judgments,
    # within minutes; each sync only moves what changed, so a short interval is cheap.
    PeriodicJob(
        name="Sync Label Studio",
        task="interop.label_studio_sync_all",
        every_seconds=300,
        description="Pull Label Studio annotations as judgments and push new tasks, for each enabled link.",
    ),
)
