from __future__ import annotations

import logging

from celery import shared_task

from feedback import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, name="feedback.expire_leases")
def expire_leases() -> int:
    expired = services.leases_expire()
    logger.info("expired %d leases", expired)
    return expired


@shared_task(acks_late=True, name="feedback.refresh_trust")
def refresh_trust() -> int:
    return services.annotator_trust_refresh()
