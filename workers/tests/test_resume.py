"""A worker killed in the middle of a pipeline run: the run resumes on another worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from curation.models import Snapshot
from flywheel.tests.workers import celery_worker, require_real_broker, worker_env
from training.config import TRAIN_OPTIONS
from training.models import Deployment, ModelKind, ModelVersion, VersionStatus
from workers import pipeline
from workers.models import PipelineRun, RunStatus
from workers.tests.test_pipeline import seed_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"
QUEUES = "default,curation,training,inference"


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_it_resumes_a_run_after_its_worker_is_killed(empty_queues, tiny_encoder, tiny_lm, settings, tmp_path):
    require_real_broker()
    LOGS.mkdir(parents=True, exist_ok=True)
    from training.tests.conftest import REWARD_DEFAULTS, SFT_DEFAULTS

    project = seed_project(name="resume")
    cfg = pipeline.pipeline_settings(project=project)
    cfg.reward_base, cfg.policy_base = str(tiny_encoder), str(tiny_lm)
    # Enough epochs that the kill lands while the reward model is still training.
    cfg.reward_config = {**{k: v for k, v in REWARD_DEFAULTS.items() if k in TRAIN_OPTIONS}, "epochs": 30}
    cfg.policy_config = {k: v for k, v in SFT_DEFAULTS.items() if k in TRAIN_OPTIONS}
    cfg.prompts_per_run = 2
    cfg.generation_max_new_tokens = 8
    cfg.save()
    env = worker_env(CELERY_VISIBILITY_TIMEOUT="5", FLYWHEEL_DATA_DIR=str(tmp_path / "data"))
    os.environ["CELERY_VISIBILITY_TIMEOUT"] = "5"
    try:
        with celery_worker(queues=QUEUES, name="doomed", env=env, log=LOGS / "resume-doomed.log") as doomed:
            run = pipeline.pipeline_run_start(project=project, trigger="test")
            training = ModelVersion.objects.filter(
                project=project, kind=ModelKind.REWARD, status=VersionStatus.TRAINING
            )
            wait_for(training.exists, 120, "the reward model to start training")
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        assert PipelineRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
        with celery_worker(queues=QUEUES, name="heir", env=env, log=LOGS / "resume-heir.log"):
            wait_for(
                lambda: PipelineRun.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
                300,
                "the run to finish on the second worker",
            )
    finally:
        del os.environ["CELERY_VISIBILITY_TIMEOUT"]
    run = PipelineRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.log + run.error
    reward_step = run.step("reward")
    assert reward_step is not None and int(reward_step["attempts"]) >= 2  # type: ignore[call-overload]
    # Resumed, not repeated: one snapshot, one reward version, one deployment of it.
    assert Snapshot.objects.filter(project=project).count() == 1
    assert ModelVersion.objects.filter(project=project, kind=ModelKind.REWARD).count() == 1
    assert Deployment.objects.filter(project=project, kind=ModelKind.REWARD).count() == 1
    assert [s["status"] for s in run.steps] == ["done"] * len(pipeline.STEPS)
