"""Prometheus metrics, collected when Prometheus scrapes /metrics.

Nothing is counted in process memory: every number is read from PostgreSQL or Redis at
scrape time with a few aggregate queries. That is what makes it safe under gunicorn's
several worker processes (and several web replicas): whichever process answers a scrape
gives the same numbers, so no PROMETHEUS_MULTIPROC_DIR is needed and a restart loses nothing.

Labels carry project ids, not names: ids never change, so a renamed project keeps its series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from workers.routing import QUEUES

logger = logging.getLogger(__name__)

# Pipeline runs read for step durations: the most recent ones are all a dashboard shows, and
# the bound keeps a scrape cheap however long the history grows.
RECENT_PIPELINE_RUNS = 200


def queue_depths(redis_url: str) -> dict[str, int]:
    """Messages waiting in each Celery queue. With the Redis transport a queue is a Redis list
    named after it, the same list KEDA watches to scale curation workers."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    return {queue: int(depth) for queue, depth in zip(QUEUES, pipe.execute(), strict=True)}


def _judgments_last_minute() -> Iterator[Metric]:
    from feedback.models import Judgment

    since = timezone.now() - timedelta(minutes=1)
    gauge = GaugeMetricFamily(
        "flywheel_judgments_last_minute",
        "Judgments submitted in the last 60 seconds (judgments per minute).",
        labels=["project"],
    )
    rows = (
        Judgment.objects.filter(created_at__gte=since)
        .values("task__project_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        gauge.add_metric([str(row["task__project_id"])], row["n"])
    yield gauge


def _curation() -> Iterator[Metric]:
    from curation.models import CurationDecision, CurationRun

    items = GaugeMetricFamily(
        "flywheel_curation_items",
        "Prompts and responses by curation status (the outcome that counts, before overrides).",
        labels=["project", "status"],
    )
    rows = CurationDecision.objects.values("project_id", "status").annotate(n=Count("id")).order_by()
    for row in rows:
        items.add_metric([str(row["project_id"]), row["status"]], row["n"])
    yield items

    runs = CounterMetricFamily("flywheel_curation_runs", "Curation runs started.", labels=["project"])
    processed = CounterMetricFamily(
        "flywheel_curation_processed_items",
        "Items processed by curation runs; rate() of this over rate() of the seconds is throughput.",
        labels=["project"],
    )
    seconds = CounterMetricFamily(
        "flywheel_curation_run_seconds",
        "Wall-clock seconds spent in finished curation runs.",
        labels=["project"],
    )
    totals = (
        CurationRun.objects.values("project_id")
        .annotate(runs=Count("id"), items=Sum("items"), seconds=Sum("seconds"))
        .order_by()
    )
    for total in totals:
        label = [str(total["project_id"])]
        runs.add_metric(label, total["runs"])
        processed.add_metric(label, total["items"] or 0)
        seconds.add_metric(label, total["seconds"] or 0.0)
    yield runs
    yield processed
    yield seconds

    # Outcomes per run live in a JSON column; an hour of runs is a handful of rows.
    recent = GaugeMetricFamily(
        "flywheel_curation_outcomes_last_hour",
        "Outcomes decided by curation runs started in the last hour.",
        labels=["project", "outcome"],
    )
    counts: dict[tuple[str, str], int] = {}
    since = timezone.now() - timedelta(hours=1)
    for project_id, outcomes in CurationRun.objects.filter(started_at__gte=since).values_list(
        "project_id", "outcomes"
    ):
        for outcome, n in (outcomes or {}).items():
            key = (str(project_id), str(outcome))
            counts[key] = counts.get(key, 0) + int(n)
    for (project, outcome), n in sorted(counts.items()):
        recent.add_metric([project, outcome], n)
    yield recent


def _pipeline() -> Iterator[Metric]:
    from workers.models import PipelineRun

    runs = GaugeMetricFamily(
        "flywheel_pipeline_runs", "Pipeline runs by status.", labels=["project", "status"]
    )
    for row in PipelineRun.objects.values("project_id", "status").annotate(n=Count("id")).order_by():
        runs.add_metric([str(row["project_id"]), row["status"]], row["n"])
    yield runs

    # The latest finished duration of each step, newest run first: a gauge, because a
    # retrain runs hours apart and a rate over scrapes would say nothing.
    last = GaugeMetricFamily(
        "flywheel_pipeline_step_seconds",
        "Duration of the latest finished run of each pipeline step.",
        labels=["project", "step"],
    )
    seen: set[tuple[str, str]] = set()
    recent = PipelineRun.objects.order_by("-created_at", "-id").values_list("project_id", "steps")
    for project_id, steps in recent[:RECENT_PIPELINE_RUNS]:
        for step in steps or []:
            key = (str(project_id), str(step.get("name")))
            if key in seen or not isinstance(step.get("seconds"), int | float):
                continue
            seen.add(key)
            last.add_metric(list(key), float(step["seconds"]))
    yield last


def _deployments() -> Iterator[Metric]:
    from training.models import Deployment

    gauge = GaugeMetricFamily(
        "flywheel_deployed_version",
        "Version number of the model serving each project and kind.",
        labels=["project", "kind"],
    )
    for project_id, kind, number in Deployment.objects.filter(ended_at__isnull=True).values_list(
        "project_id", "kind", "version__number"
    ):
        gauge.add_metric([str(project_id), kind], number)
    yield gauge


def _queues() -> Iterator[Metric]:
    if not settings.REDIS_URL:
        # The embedded filesystem broker of `make run` has no cheap length to read.
        return
    gauge = GaugeMetricFamily(
        "flywheel_queue_depth", "Messages waiting in each Celery queue (Redis LLEN).", labels=["queue"]
    )
    for queue, depth in queue_depths(settings.REDIS_URL).items():
        gauge.add_metric([queue], depth)
    yield gauge


SOURCES = {
    "queues": _queues,
    "judgments": _judgments_last_minute,
    "curation": _curation,
    "pipeline": _pipeline,
    "deployments": _deployments,
}


class FlywheelCollector(Collector):
    """Reads every metric at scrape time. One failing source (Redis down) must not blank the
    others, so each is collected on its own and its health is reported as a metric."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "flywheel_metrics_source_up", "1 when a metrics source could be read.", labels=["source"]
        )
        for name, source in SOURCES.items():
            try:
                metrics = list(source())
            except Exception:
                logger.exception("metrics source %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from metrics
        yield up

    def describe(self) -> Iterable[Metric]:
        # Without this, registering would run collect() (and its queries) at import time.
        return []


def registry() -> CollectorRegistry:
    """A registry of our own: the default one adds this process's CPU and memory, which
    from one arbitrary gunicorn worker would mislead."""
    found = CollectorRegistry(auto_describe=False)
    found.register(FlywheelCollector())
    return found


def render() -> tuple[bytes, str]:
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

    return generate_latest(registry()), CONTENT_TYPE_PLAIN_0_0_4
