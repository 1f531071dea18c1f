from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from feedback import demo_data
from feedback.models import ComparisonTask, Project, Prompt, Response
from flywheel.models import Role, User

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {
        "projects": Project.objects.count(),
        "prompts": Prompt.objects.count(),
        "responses": Response.objects.count(),
        "tasks": ComparisonTask.objects.count(),
        "users": User.objects.count(),
    }


def test_it_creates_nothing_new_on_a_second_run():
    _seed()
    first = _counts()
    output = _seed()
    assert _counts() == first
    assert "0 created" in output and "already there" in output


def test_it_creates_the_demo_cast_with_roles():
    output = _seed()
    roles = dict(User.objects.values_list("username", "role"))
    assert roles == {
        "dave": Role.ADMIN,
        "carol": Role.CURATOR,
        "alice": Role.ANNOTATOR,
        "bob": Role.ANNOTATOR,
    }
    dave = User.objects.get(username="dave")
    assert dave.is_superuser and dave.check_password("flywheel-demo")
    for username in roles:
        assert username in output


def test_it_seeds_about_fifty_prompts_each_with_tasks():
    _seed()
    project = Project.objects.get(name=demo_data.PROJECT_NAME)
    assert "tie" in project.guidelines.lower() and "both bad" in project.guidelines.lower()
    prompts = Prompt.objects.filter(project=project)
    assert 45 <= prompts.count() <= 60
    assert all(p.responses.count() >= 2 for p in prompts)
    assert not prompts.exclude(tasks__isnull=False).exists()
    assert ComparisonTask.objects.filter(project=project).count() >= prompts.count()


def test_it_gives_every_gold_task_an_answer():
    _seed()
    gold = ComparisonTask.objects.filter(is_gold=True)
    assert gold.count() >= 3
    assert set(gold.values_list("gold_answer", flat=True)) <= {"a", "b"}


def test_it_plants_duplicates_and_junk_for_curation():
    _seed()
    planted = demo_data.planted_items()
    assert any(why.startswith("exact-duplicate") for why in planted.values())
    assert any(why.startswith("near-duplicate") for why in planted.values())
    assert any(why.startswith("pii") for why in planted.values())
    stored = set(Prompt.objects.values_list("external_id", flat=True)) | set(
        Response.objects.values_list("external_id", flat=True)
    )
    assert set(planted) <= stored
    texts = list(Prompt.objects.values_list("text", flat=True))
    assert len(texts) > len(set(texts)), "an exact duplicate prompt is part of the demo"


def test_it_refuses_to_seed_in_production():
    with override_settings(PRODUCTION=True), pytest.raises(CommandError, match="production"):
        _seed()
    assert not User.objects.exists()
