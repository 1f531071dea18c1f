from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from workers.schedule import SCHEDULE


def schedule_sync() -> dict[str, int]:
    """Write workers/schedule.py into django-celery-beat's tables.

    A job that already exists keeps the interval and enabled flag an admin gave it; only
    new jobs are created, so re-running on every start-up is harmless.
    """
    created = kept = 0
    with transaction.atomic():
        for job in SCHEDULE:
            every = (
                job.demo_every_seconds
                if settings.FLYWHEEL_DEMO and job.demo_every_seconds
                else job.every_seconds
            )
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
            _, was_created = PeriodicTask.objects.get_or_create(
                name=job.name,
                defaults={
                    "task": job.task,
                    "interval": interval,
                    "description": job.description,
                    "kwargs": json.dumps({}),
                },
            )
            created += int(was_created)
            kept += int(not was_created)
    return {"created": created, "kept": kept}
