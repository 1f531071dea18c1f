"""A project's pipeline settings: read by curators, changed by admins over the API or in the
Django admin, every value checked before any is saved, every change audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from feedback.tests.factories import make_project, make_user
from flywheel.models import AuditLog, Role
from workers.models import PipelineSettings, SelectionPolicy
from workers.pipeline import pipeline_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(db):  # type: ignore[no-untyped-def]
    return make_project(name="settings")


def api(role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(f"{role}-user", role))
    return client


def test_an_admin_changes_the_loop_over_the_api_and_it_is_audited(project, tmp_path):
    url = reverse("api-pipeline-settings", args=[project.pk])
    shown = api(Role.CURATOR).get(url).json()
    assert shown["selection_policy"] == SelectionPolicy.CONTRAST and shown["reward_warm_start"] is False
    change = {
        "min_new_items": 200,
        "selection_policy": "uncertainty",
        "reward_warm_start": True,
        "reward_base": str(tmp_path),
        "reward_config": {"lr": 1e-4, "epochs": 2},
    }
    answer = api(Role.ADMIN).patch(url, change, format="json")
    assert answer.status_code == 200, answer.content
    assert {k: answer.json()[k] for k in change} == change
    cfg = pipeline_settings(project=project)
    assert (cfg.min_new_items, cfg.selection_policy, cfg.reward_warm_start) == (200, "uncertainty", True)
    assert cfg.reward_config == {"lr": 1e-4, "epochs": 2} and cfg.max_age_hours == 24  # the rest kept
    entry = AuditLog.objects.get(action="pipeline.settings")
    assert entry.before["selection_policy"] == "contrast" and entry.after["selection_policy"] == "uncertainty"
    assert entry.before["min_new_items"] == 50
    assert entry.actor.username == "admin-user"


def stored(project) -> dict:  # type: ignore[no-untyped-def]
    cfg = pipeline_settings(project=project)
    return {f.name: getattr(cfg, f.name) for f in PipelineSettings._meta.fields}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"min_new_items": 0}, "min_new_items", "from 1"),
        ({"best_of_n": 1}, "best_of_n", "0 (off) or from 2"),
        ({"selection_policy": "loudest"}, "selection_policy", "not a valid choice"),
        ({"reward_base": "/no/such/model"}, "reward_base", "no model folder"),
        ({"reward_config": {"learning_rate": 1e-4}}, "reward_config", "unknown option learning_rate"),
        ({"policy_config": {"batch_size": 0}}, "policy_config", "batch_size must be at least 1"),
        ({"policy_config": {"lr": "fast"}}, "policy_config", "lr has the wrong type"),
        ({"reward_config": [1, 2]}, "reward_config", "must be an object"),
        ({"min_new_items": 10, "speed": "max"}, "speed", "unknown setting speed"),
        ({"reward_warm_start": "perhaps"}, "reward_warm_start", "valid boolean"),
    ],
)
def test_a_bad_value_is_refused_with_its_field_and_nothing_is_saved(project, change, field, words):
    before = {
        f.name: getattr(pipeline_settings(project=project), f.name) for f in PipelineSettings._meta.fields
    }
    answer = api(Role.ADMIN).patch(reverse("api-pipeline-settings", args=[project.pk]), change, format="json")
    assert answer.status_code == 400, answer.content
    assert words in str(answer.json()) and field in str(answer.json()), answer.json()
    after = {
        f.name: getattr(pipeline_settings(project=project), f.name) for f in PipelineSettings._meta.fields
    }
    assert after == before and not AuditLog.objects.filter(action="pipeline.settings").exists()


def test_a_stored_base_folder_that_vanished_blocks_only_a_change_to_it(project, tmp_path):
    folder = tmp_path / "encoder"
    folder.mkdir()
    url = reverse("api-pipeline-settings", args=[project.pk])
    admin = api(Role.ADMIN)
    assert admin.patch(url, {"reward_base": str(folder)}, format="json").status_code == 200
    folder.rmdir()
    # Anything else can still be changed, and the stored folder is left as it was.
    answer = admin.patch(url, {"min_new_items": 75}, format="json")
    assert answer.status_code == 200, answer.content
    cfg = pipeline_settings(project=project)
    assert (cfg.min_new_items, cfg.reward_base) == (75, str(folder))
    # Setting it again to the missing folder is refused; blanking it (the default base) is not.
    refused = admin.patch(url, {"reward_base": str(folder)}, format="json")
    assert refused.status_code == 400 and "no model folder" in str(refused.json())
    assert admin.patch(url, {"reward_base": ""}, format="json").status_code == 200
    assert pipeline_settings(project=project).reward_base == ""


def test_an_admin_edits_them_in_the_django_admin_with_the_same_checks(project):
    cfg = pipeline_settings(project=project)
    client = Client()
    client.force_login(make_user("dave", Role.ADMIN))
    page = reverse("admin:workers_pipelinesettings_change", args=[cfg.pk])
    assert client.get(page).status_code == 200
    form = {
        "enabled": "on",
        "min_new_items": "30",
        "max_age_hours": "12",
        "candidates_per_prompt": "3",
        "prompts_per_run": "20",
        "tasks_per_run": "50",
        "selection_policy": "random",
        "best_of_n": "0",
        "reward_base": "",
        "policy_base": "",
        "reward_warm_start": "on",
        "reward_config": '{"learning_rate": 0.001}',
        "policy_config": "{}",
        "generation_max_new_tokens": "128",
    }
    refused = client.post(page, form)
    assert refused.status_code == 200 and "unknown option learning_rate" in refused.content.decode()
    cfg.refresh_from_db()
    assert cfg.min_new_items == 50
    assert client.post(page, {**form, "reward_config": '{"lr": 0.001}'}).status_code == 302
    cfg.refresh_from_db()
    assert (cfg.min_new_items, cfg.selection_policy, cfg.reward_warm_start) == (30, "random", True)
    assert cfg.reward_config == {"lr": 0.001} and not cfg.policy_warm_start
    entry = AuditLog.objects.get(action="pipeline.settings")
    assert entry.actor.username == "dave" and entry.before["min_new_items"] == 50
    assert entry.after["reward_warm_start"] is True and "max_age_hours" in entry.after
