from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name="training.train_version", max_retries=2)
def train_version(self: Any, version_id: int) -> dict[str, Any]:
    """Train, evaluate, gate. A redelivery after a crash resumes from the last checkpoint."""
    from training import runs
    from training.models import ModelVersion

    if not ModelVersion.objects.filter(pk=version_id).exists():
        logger.info("model version %s is gone; nothing to train", version_id)
        return {"version": version_id, "passed": None}
    decision = runs.version_train(version_id=version_id)
    return {"version": version_id, "passed": decision.passed if decision else None}


@shared_task(name="inference.generate")
def generate(
    project_id: int, prompts: list[str], n: int = 1, temperature: float = 0.8, max_new_tokens: int = 128
) -> dict[str, Any]:
    from training import inference

    return inference.generate(
        project_id=project_id, prompts=prompts, n=n, temperature=temperature, max_new_tokens=max_new_tokens
    )


@shared_task(name="inference.score")
def score(project_id: int, prompt: str, responses: list[str]) -> dict[str, Any]:
    from training import inference

    return inference.score(project_id=project_id, prompt=prompt, responses=responses)
