"""/metrics: what Prometheus scrapes, read from the database and Redis at scrape time."""

from __future__ import annotations

import re
import uuid

import pytest
import redis
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from curation.models import CurationDecision, CurationRun, ItemKind, Status
from feedback import services
from feedback.tests.factories import make_project, make_prompt, make_task, make_user
from flywheel import metrics
from flywheel.models import Role
from training.models import Deployment, ModelKind, ModelVersion
from workers.models import PipelineRun

pytestmark = pytest.mark.django_db

PUBLIC = "198.51.100.7"
TOKEN = "metrics-token-" + "x" * 40
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(body: bytes) -> Samples:
    """Every sample of a scrape, keyed by name and sorted labels, as Prometheus would parse it."""
    found: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(**extra: str) -> Samples:
    response = Client().get("/metrics", **extra)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content)


def test_it_counts_a_judgment_submitted_in_the_last_minute():
    project = make_project(name="Metrics")
    make_task(project)
    alice = make_user("alice", Role.ANNOTATOR)
    key = ("flywheel_judgments_last_minute", (("project", str(project.pk)),))
    assert key not in scrape()

    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    services.comparison_submit(assignment=lease, annotator=alice, choice="a")

    assert scrape()[key] == 1.0


def test_it_reports_curation_deployments_and_pipeline_steps():
    project = make_project(name="Everything")
    pid = str(project.pk)
    for status in (Status.KEPT, Status.KEPT, Status.REJECTED):
        CurationDecision.objects.update_or_create(
            prompt=make_prompt(project),
            defaults={"project": project, "kind": ItemKind.PROMPT, "status": status},
        )
    CurationRun.objects.create(project=project, items=30, seconds=1.5, outcomes={"kept": 20, "rejected": 10})
    CurationRun.objects.create(project=project, items=10, seconds=0.5, outcomes={"kept": 10})
    first = ModelVersion.objects.create(project=project, kind=ModelKind.POLICY, number=1, base="tiny")
    second = ModelVersion.objects.create(project=project, kind=ModelKind.POLICY, number=2, base="tiny")
    Deployment.objects.create(project=project, kind=ModelKind.POLICY, version=first, action="initial")
    Deployment.objects.filter(version=first).update(ended_at="2026-01-01T00:00:00Z")
    Deployment.objects.create(project=project, kind=ModelKind.POLICY, version=second, action="promote")
    PipelineRun.objects.create(
        project=project,
        trigger="manual",
        status="succeeded",
        steps=[
            {"name": "snapshot", "status": "done", "seconds": 2.5},
            {"name": "reward", "status": "pending"},
        ],
    )

    found = scrape()

    assert found[("flywheel_curation_items", (("project", pid), ("status", "kept")))] == 2
    assert found[("flywheel_curation_items", (("project", pid), ("status", "rejected")))] == 1
    assert found[("flywheel_curation_runs_total", (("project", pid),))] == 2
    assert found[("flywheel_curation_processed_items_total", (("project", pid),))] == 40
    assert found[("flywheel_curation_run_seconds_total", (("project", pid),))] == 2.0
    assert found[("flywheel_curation_outcomes_last_hour", (("outcome", "kept"), ("project", pid)))] == 30
    # The active deployment only: version 1 was replaced.
    assert found[("flywheel_deployed_version", (("kind", "policy"), ("project", pid)))] == 2
    assert found[("flywheel_pipeline_step_seconds", (("project", pid), ("step", "snapshot")))] == 2.5
    # A step that has not finished has no duration to report.
    assert ("flywheel_pipeline_step_seconds", (("project", pid), ("step", "reward"))) not in found
    assert found[("flywheel_pipeline_runs", (("project", pid), ("status", "succeeded")))] == 1


@pytest.fixture
def scratch_queue(monkeypatch):  # type: ignore[no-untyped-def]
    """A queue of this test's own, so nothing is pushed where a real worker listens."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: queue depth is read from Redis (CI sets it)")
    name = f"metrics-test-{uuid.uuid4().hex}"
    monkeypatch.setattr(metrics, "QUEUES", (name,))
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield name, client
    client.delete(name)


def test_it_reports_the_length_of_each_queue(scratch_queue):
    name, client = scratch_queue
    client.rpush(name, "a", "b", "c")
    found = scrape()
    assert found[("flywheel_queue_depth", (("queue", name),))] == 3
    assert found[("flywheel_metrics_source_up", (("source", "queues"),))] == 1


def test_it_keeps_the_other_metrics_when_redis_is_down():
    project = make_project(name="Redis down")
    version = ModelVersion.objects.create(project=project, kind=ModelKind.REWARD, number=4, base="tiny")
    Deployment.objects.create(project=project, kind=ModelKind.REWARD, version=version, action="promote")
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        found = scrape()
    assert found[("flywheel_metrics_source_up", (("source", "queues"),))] == 0
    assert found[("flywheel_metrics_source_up", (("source", "deployments"),))] == 1
    assert found[("flywheel_deployed_version", (("kind", "reward"), ("project", str(project.pk))))] == 4


PRIVATE = ["127.0.0.1", "10.2.3.4", "172.20.0.9", "192.168.1.5", "::1", "::ffff:10.0.0.1"]


@pytest.mark.parametrize("address", PRIVATE)
def test_it_is_open_to_the_private_network(address):
    assert Client().get("/metrics", REMOTE_ADDR=address).status_code == 200


def test_it_asks_a_public_caller_for_a_token():
    response = Client().get("/metrics", REMOTE_ADDR=PUBLIC)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"flywheel_" not in response.content


def test_it_treats_a_request_through_a_proxy_as_public():
    # An ingress connects from a private address; the caller behind it may be anyone.
    response = Client().get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=PUBLIC)
    assert response.status_code == 401


@override_settings(FLYWHEEL_METRICS_TOKEN=TOKEN)
def test_it_admits_the_bearer_token_and_only_that():
    right = Client().get("/metrics", REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert right.status_code == 200
    assert re.search(rb"^flywheel_metrics_source_up", right.content, re.MULTILINE)
    wrong = Client().get("/metrics", REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert wrong.status_code == 401
    other_scheme = Client().get("/metrics", REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION=f"Token {TOKEN}")
    assert other_scheme.status_code == 401


def test_it_admits_no_token_at_all_when_none_is_configured():
    # The empty setting must not match an empty bearer.
    response = Client().get("/metrics", REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
