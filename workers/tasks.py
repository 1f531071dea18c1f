"""The pipeline as a Celery chain. Each step is its own task on the queue its hardware
needs (see workers/routing.py); each takes the run id and is safe to run twice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import chain, shared_task

from workers import pipeline

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


def _run_step(task: Any, run_id: int, name: str, body: Callable[[Any], str | tuple[str, str]]) -> None:
    run = pipeline.step_begin(run_id=run_id, name=name)
    if run is None:
        return
    try:
        outcome = body(run)
    except Exception as exc:
        if task.request.retries < MAX_RETRIES:
            pipeline._log(
                run_id,
                f"{name}: attempt {task.request.retries + 1} failed ({type(exc).__name__}: {exc}); retrying",
            )
            raise task.retry(exc=exc, countdown=min(600, 10 * 2**task.request.retries)) from exc
        from training.services import describe_exception

        pipeline.run_fail(run_id=run_id, step=name, error=describe_exception(exc))
        raise
    status, note = outcome if isinstance(outcome, tuple) else ("done", outcome)
    pipeline.step_end(run_id=run_id, name=name, status=status, note=note)


_STEP_OPTIONS: dict[str, Any] = {"bind": True, "acks_late": True, "max_retries": MAX_RETRIES}


@shared_task(name="workers.pipeline_snapshot", **_STEP_OPTIONS)
def step_snapshot(self: Any, run_id: int) -> int:
    _run_step(self, run_id, "snapshot", lambda run: pipeline.step_snapshot(run=run))
    return run_id


@shared_task(name="training.pipeline_reward", **_STEP_OPTIONS)
def step_reward(self: Any, run_id: int) -> int:
    _run_step(self, run_id, "reward", lambda run: pipeline.step_train(run=run, kind="reward"))
    return run_id


@shared_task(name="training.pipeline_policy", **_STEP_OPTIONS)
def step_policy(self: Any, run_id: int) -> int:
    _run_step(self, run_id, "policy", lambda run: pipeline.step_train(run=run, kind="policy"))
    return run_id


@shared_task(name="inference.pipeline_generate", **_STEP_OPTIONS)
def step_generate(self: Any, run_id: int) -> int:
    _run_step(self, run_id, "generate", lambda run: pipeline.step_generate(run=run))
    return run_id


@shared_task(name="inference.pipeline_pairs", **_STEP_OPTIONS)
def step_pairs(self: Any, run_id: int) -> int:
    _run_step(self, run_id, "pairs", lambda run: pipeline.step_pairs(run=run))
    return run_id


@shared_task(name="workers.pipeline_finish", acks_late=True)
def finish(run_id: int) -> int:
    pipeline.run_finish(run_id=run_id)
    return run_id


def pipeline_chain(run_id: int) -> Any:
    # Immutable signatures: every step gets the run id, not the previous step's return value.
    return chain(
        step_snapshot.si(run_id),
        step_reward.si(run_id),
        step_policy.si(run_id),
        step_generate.si(run_id),
        step_pairs.si(run_id),
        finish.si(run_id),
    )


@shared_task(acks_late=True, name="workers.retrain_check")
def retrain_check() -> list[int]:
    """Start a run for every project whose trigger fired."""
    from feedback.models import Project
    from flywheel.errors import Conflict

    started = []
    for project in Project.objects.filter(is_active=True):
        due, reason = pipeline.retrain_due(project=project)
        if not due:
            continue
        try:
            run = pipeline.pipeline_run_start(project=project, trigger=f"schedule: {reason}")
        except Conflict:
            continue
        started.append(run.pk)
    return started


@shared_task(acks_late=True, name="workers.reap_runs")
def reap_runs() -> int:
    return pipeline.runs_reap()
