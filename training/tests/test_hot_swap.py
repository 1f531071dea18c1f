"""A real inference worker switches models after a promotion, under load, with no failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from feedback.tests.factories import make_project, make_user
from flywheel.celery import app
from flywheel.models import Role
from flywheel.tests.workers import celery_worker, require_real_broker, worker_env
from training import services
from training.models import ModelKind
from training.tasks import score
from training.tiny import build_tiny_encoder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LOGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"
CORPUS = ["what color is the sky ?", "the sky is blue", "please note the grass is green", "thanks"]


def test_it_swaps_the_served_model_within_ten_seconds_without_failing_a_request(tmp_path):
    require_real_broker()
    LOGS.mkdir(parents=True, exist_ok=True)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("inference")
    project = make_project(name="hot swap")
    dave = make_user("dave", Role.ADMIN)
    first = services.model_version_register(
        project=project,
        kind=ModelKind.REWARD,
        folder=build_tiny_encoder(tmp_path / "v1", CORPUS, seed=1),
        base="tiny",
        actor=dave,
    )
    second = services.model_version_register(
        project=project,
        kind=ModelKind.REWARD,
        folder=build_tiny_encoder(tmp_path / "v2", CORPUS, seed=2),
        base="tiny",
        actor=dave,
    )
    services.model_force_promote(version=first, actor=dave, reason="first model")
    results: list[tuple[float, int | None, str]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                reply = score.apply_async(
                    kwargs={
                        "project_id": project.pk,
                        "prompt": "what color is the sky ?",
                        "responses": ["blue", "green"],
                    }
                ).get(timeout=30)
                results.append((time.monotonic(), reply["version"], "ok"))
            except Exception as exc:  # every failure is recorded and fails the test below
                results.append((time.monotonic(), None, f"{type(exc).__name__}: {exc}"))

    env = worker_env()
    with celery_worker(
        queues="inference", name="inference", env=env, pool="threads", log=LOGS / "hot-swap.log"
    ):
        threads = [threading.Thread(target=client) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while not any(version == first.pk for _, version, _ in results) and time.monotonic() < deadline:
            time.sleep(0.2)
        services.model_force_promote(version=second, actor=dave, reason="better model")
        promoted_at = time.monotonic()
        time.sleep(14)
        stop.set()
        for thread in threads:
            thread.join(60)
    failures = [r for r in results if r[2] != "ok"]
    assert failures == []
    assert any(version == first.pk for _, version, _ in results)
    switched = [t for t, version, _ in results if version == second.pk]
    assert switched, "the worker never served the promoted model"
    assert switched[0] - promoted_at <= 10
    # Once switched, never back: requests after the switch all use the new model.
    assert all(version == second.pk for t, version, _ in results if t > switched[0])
