from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.core.cache import cache

logger = logging.getLogger(__name__)


def enqueue_curation(project_id: int) -> None:
    """Called after commit when a project gets new text. A burst of inserts (a bulk import)
    enqueues one task, not one per row: the task drains everything pending anyway."""
    if cache.add(f"curation:queued:{project_id}", 1, timeout=2):
        curate_project.delay(project_id)


@shared_task(bind=True, acks_late=True, name="curation.curate_project", max_retries=5)
def curate_project(
    self: Any, project_id: int, trigger: str = "auto", batch_size: int = 200
) -> dict[str, Any]:
    from curation import services

    try:
        run = services.project_curate(
            project_id=project_id, trigger=trigger, token=self.request.id, batch_size=batch_size
        )
    except Exception as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
    if run is None:
        logger.info("project %s is gone; nothing to curate", project_id)
        return {"items": 0}
    return {"run": run.pk, "items": run.items, "outcomes": run.outcomes}


@shared_task(acks_late=True, name="curation.curate_pending")
def curate_pending() -> int:
    """The safety net behind the after-commit trigger: anything still pending gets curated."""
    from curation.selectors import projects_with_pending

    project_ids = projects_with_pending()
    for project_id in project_ids:
        curate_project.delay(project_id)
    return len(project_ids)


@shared_task(bind=True, acks_late=True, name="curation.train_quality_model")
def train_quality_model(self: Any, project_id: int) -> dict[str, Any]:
    from curation import quality

    row = quality.quality_model_train_if_ready(project_id=project_id)
    return {"model": row.pk if row else None}


@shared_task(acks_late=True, name="curation.train_quality_models")
def train_quality_models() -> int:
    from feedback.models import Project

    ids = list(Project.objects.filter(is_active=True).values_list("id", flat=True))
    for project_id in ids:
        train_quality_model.delay(project_id)
    return len(ids)
