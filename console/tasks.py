"""Background work for the console: thin adapters around selectors, by project id."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

logger = logging.getLogger(__name__)


def enqueue_preview_warm(project_id: int) -> None:
    """Called when a curator opens the thresholds page. At most one task a minute a project:
    the replay it warms stays cached until the pipeline decides something again."""
    if cache.add(f"console:preview-warm-queued:{project_id}", 1, timeout=60):
        preview_warm.delay(project_id)


@shared_task(acks_late=True, name="console.preview_warm")
def preview_warm(project_id: int) -> None:
    """Replay duplicate detection at the threshold in force into the threshold preview's cache,
    so a first preview of new rule limits does not wait for it. Harmless to run twice: a
    cached replay is found and kept."""
    from console import selectors
    from curation.models import CurationSettings

    cfg = CurationSettings.objects.filter(project_id=project_id).first()
    if cfg is None:
        logger.info("project %s has no curation settings; nothing to warm", project_id)
        return
    selectors.duplicates_after_recuration(cfg=cfg, threshold=cfg.near_dup_threshold)
