"""Real Celery workers on the real broker and database: the race and the crash."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from curation.models import CurationDecision, CurationSettings, Status
from curation.tasks import curate_project
from curation.tests.factories import add_prompt, paragraph, variant
from feedback.tests.factories import make_project
from flywheel.celery import app
from flywheel.tests.workers import celery_worker, require_real_broker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def broker():  # type: ignore[no-untyped-def]
    require_real_broker()
    LOGS.mkdir(parents=True, exist_ok=True)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("curation")
    yield
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("curation")


def test_it_never_keeps_two_members_of_a_cluster_with_two_workers(broker):
    project = make_project(name="race")
    clusters: dict[int, list[int]] = defaultdict(list)
    with (
        celery_worker(queues="curation", name="w1", log=LOGS / "race-w1.log"),
        celery_worker(queues="curation", name="w2", log=LOGS / "race-w2.log"),
    ):
        # A stream: each wave brings forty near duplicates of one text and two tasks with
        # batches of twenty, so the two workers decide members of one cluster at the same time.
        for i in range(4):
            base = paragraph(1000 + i)
            for copy in range(40):
                text = base if copy == 0 else variant(base, i * 100 + copy)
                clusters[i].append(add_prompt(project, text).pk)
            for _ in range(2):
                curate_project.delay(project.pk, "test", 20)
        total = sum(len(v) for v in clusters.values())
        wait_until(
            lambda: (
                CurationDecision.objects.filter(project=project).exclude(status=Status.PENDING).count()
                == total
            ),
            120,
            "both workers to curate every prompt",
        )
    for members in clusters.values():
        statuses = dict(
            CurationDecision.objects.filter(prompt_id__in=members).values_list("prompt_id", "status")
        )
        kept = [pk for pk, status in statuses.items() if status == Status.KEPT]
        assert len(kept) == 1, f"cluster {members} kept {kept}"
        representatives = set(
            CurationDecision.objects.filter(prompt_id__in=members).values_list(
                "cluster_representative", flat=True
            )
        )
        assert len(representatives) == 1
    # Both workers really took part.
    logs = [(LOGS / f"race-w{i}.log").read_text() for i in (1, 2)]
    assert all("curation.curate_project" in log and "succeeded" in log for log in logs)


def test_it_resumes_a_batch_after_a_worker_is_killed(broker):
    project = make_project(name="crash")
    for i in range(300):
        add_prompt(project, paragraph(5000 + i, words=120))
    env = worker_env(CELERY_VISIBILITY_TIMEOUT="3")
    os.environ["CELERY_VISIBILITY_TIMEOUT"] = "3"
    try:
        with celery_worker(
            queues="curation", name="doomed", env=env, log=LOGS / "crash-doomed.log"
        ) as doomed:
            curate_project.delay(project.pk, "test", 20)
            done = CurationDecision.objects.filter(project=project).exclude(status=Status.PENDING)
            wait_until(lambda: done.count() >= 20, 120, "the first batches to finish")
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        processed_before = done.count()
        assert processed_before < 300, "the worker finished before it could be killed; make the work bigger"
        with celery_worker(queues="curation", name="heir", env=env, log=LOGS / "crash-heir.log"):
            wait_until(lambda: done.count() == 300, 180, "the redelivered task to finish the project")
    finally:
        del os.environ["CELERY_VISIBILITY_TIMEOUT"]
    # Nothing lost, nothing processed twice: every item got exactly one sequence number.
    seqs = list(CurationDecision.objects.filter(project=project).values_list("dedup_seq", flat=True))
    assert sorted(seqs) == list(range(1, 301))
    assert CurationSettings.objects.get(project=project).dedup_seq == 300
    assert CurationDecision.objects.filter(project=project, status=Status.KEPT).count() == 300
