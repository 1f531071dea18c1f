"""Factories for tests: small functions that build valid rows with sensible defaults."""

from __future__ import annotations

import itertools
from typing import Any

from feedback.models import ComparisonTask, Project, Prompt, PromptSource, Response, ResponseSource
from flywheel.models import Role, User

_seq = itertools.count(1)

PASSWORD = "correct horse battery staple"


def make_user(username: str, role: Role = Role.ANNOTATOR, **extra: Any) -> User:
    user = User(
        username=username, role=role, is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN, **extra
    )
    user.set_password(PASSWORD)
    user.save()
    return user


def make_project(**extra: Any) -> Project:
    defaults: dict[str, Any] = {
        "name": f"Project {next(_seq)}",
        "overlap_k": 3,
        "gold_rate": 0.0,
        "lease_seconds": 600,
    }
    defaults.update(extra)
    return Project.objects.create(**defaults)


def make_prompt(project: Project, text: str | None = None, **extra: Any) -> Prompt:
    return Prompt.objects.create(
        project=project,
        text=text or f"Explain idea number {next(_seq)} simply.",
        source=PromptSource.SEED,
        **extra,
    )


def make_response(prompt: Prompt, text: str | None = None, **extra: Any) -> Response:
    extra.setdefault("source", ResponseSource.SEED)
    return Response.objects.create(
        project_id=prompt.project_id, prompt=prompt, text=text or f"An answer, version {next(_seq)}.", **extra
    )


def make_task(
    project: Project, *, priority: float = 0.0, is_gold: bool = False, gold_answer: str = "", **extra: Any
) -> ComparisonTask:
    prompt = extra.pop("prompt", None) or make_prompt(project)
    response_a = extra.pop("response_a", None) or make_response(prompt)
    response_b = extra.pop("response_b", None) or make_response(prompt)
    return ComparisonTask.objects.create(
        project=project,
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        priority=priority,
        is_gold=is_gold,
        gold_answer=gold_answer,
        **extra,
    )
