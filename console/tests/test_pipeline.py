"""The pipeline runs page: steps, durations, logs and errors; run now; retry a failed run."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from console.tests.factories import failed_pipeline_run
from flywheel.models import AuditLog, User
from workers.models import PipelineRun, RunStatus

pytestmark = pytest.mark.django_db


def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_it_shows_each_run_with_its_steps_durations_log_and_error(project, carol):
    run = failed_pipeline_run(project)
    page = client(carol).get(reverse("console-pipeline", args=[project.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    row = html[html.index(f'data-run="{run.pk}"') :]
    assert "Failed" in row and "95.0 s" in row
    # The finished step's own time; the failed step's from when it started to when it stopped.
    assert "12.5 s" in row and "82.0 s" in row and "2 attempts" in row
    assert "reward: FAILED: CUDA out of memory" in row
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert f"Retry #{run.pk}" in row


def test_it_runs_the_pipeline_now_and_audits_who_did(project, carol):
    c = client(carol)
    response = c.post(reverse("console-pipeline-run", args=[project.pk]))
    assert response.status_code == 302
    run = PipelineRun.objects.get(project=project)
    assert (run.trigger, run.status) == ("console", RunStatus.QUEUED)
    assert AuditLog.objects.get(action="pipeline.start").actor == carol
    page = c.get(reverse("console-pipeline", args=[project.pk]))
    assert f"Started pipeline run {run.pk}." in page.content.decode()
    assert f"Run {run.pk} is queued" in page.content.decode()


def test_it_refuses_a_second_run_while_one_is_active(project, carol):
    c = client(carol)
    c.post(reverse("console-pipeline-run", args=[project.pk]))
    c.post(reverse("console-pipeline-run", args=[project.pk]))
    assert PipelineRun.objects.filter(project=project).count() == 1
    page = c.get(reverse("console-pipeline", args=[project.pk]))
    assert "is already in progress" in page.content.decode()


def test_it_retries_a_failed_run_and_only_a_failed_one(project, carol, dave):
    failed = failed_pipeline_run(project)
    response = client(dave).post(reverse("console-pipeline-retry", args=[project.pk, failed.pk]))
    assert response.status_code == 302
    retry = PipelineRun.objects.exclude(pk=failed.pk).get()
    assert (retry.trigger, retry.retry_of_id, retry.status) == ("retry", failed.pk, RunStatus.QUEUED)
    assert AuditLog.objects.get(action="pipeline.start").actor == dave

    PipelineRun.objects.filter(pk=retry.pk).update(status=RunStatus.SUCCEEDED)
    c = client(carol)
    c.post(reverse("console-pipeline-retry", args=[project.pk, retry.pk]))
    assert PipelineRun.objects.count() == 2
    assert (
        "Only a failed run can be retried"
        in c.get(reverse("console-pipeline", args=[project.pk])).content.decode()
    )


def test_it_keeps_runs_to_their_project(project, carol):
    from feedback.tests.factories import make_project

    other = make_project(name="Other")
    failed = failed_pipeline_run(other)
    response = client(carol).post(reverse("console-pipeline-retry", args=[project.pk, failed.pk]))
    assert response.status_code == 404
    assert PipelineRun.objects.count() == 1
