"""The Celery application. Queues and routing live in workers/routing.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel.settings")

app = Celery("flywheel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = "workers.routing.route_task"
app.conf.task_default_queue = "default"
app.autodiscover_tasks()
