from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name="interop.label_studio_sync", max_retries=6)
def label_studio_sync(self: Any, link_id: int, trigger: str = "beat") -> dict[str, Any]:
    """Sync one Label Studio link. Unreachable or failing servers are retried with backoff
    (30 s, 1 min, 2 min ... up to 30 min); a refused token or a deleted project is not, as only
    a person can fix it: the error waits on the link."""
    from flywheel.errors import Conflict, NotFound
    from interop import label_studio

    try:
        report = label_studio.label_studio_sync(link_id=link_id, trigger=trigger)
    except NotFound:
        logger.info("Label Studio link %s is gone; nothing to sync", link_id)
        return {"error": "no such link"}
    except Conflict:
        # Another sync of the link is running; it does the same work.
        return {"error": "already running"}
    except label_studio.LabelStudioUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(1800, 30 * 2**self.request.retries)) from exc
    except label_studio.LabelStudioError as exc:
        return {"error": exc.message}
    return report.as_dict()


@shared_task(acks_late=True, name="interop.label_studio_sync_all")
def label_studio_sync_all() -> int:
    from interop.models import LabelStudioLink

    link_ids = list(LabelStudioLink.objects.filter(enabled=True).values_list("id", flat=True))
    for link_id in link_ids:
        label_studio_sync.delay(link_id)
    return len(link_ids)
