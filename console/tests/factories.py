"""A small curated project: near and exact duplicates, short prompts, responses, PII."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from curation import services
from curation.models import CurationDecision
from curation.tests.factories import add_demo, add_prompt, paragraph, variant
from feedback.models import Project, Prompt, Response
from training import services as training_services
from training.models import ModelKind, ModelVersion
from workers.models import PipelineRun, RunStatus


@dataclass
class Curated:
    prompts: list[Prompt]
    responses: list[Response]
    base: Prompt
    near: Prompt
    exact: Prompt
    short: Prompt

    def decision(self, item: Prompt | Response) -> CurationDecision:
        if isinstance(item, Prompt):
            return CurationDecision.objects.get(prompt=item)
        return CurationDecision.objects.get(response=item)


def curated_project(project: Project) -> Curated:
    """Twelve prompts and four demonstrations, curated once."""
    base_text = paragraph(1)
    prompts = [add_prompt(project, base_text)]
    near = add_prompt(project, variant(base_text, 2))
    farther = add_prompt(project, variant(base_text, 3, edits=3))
    exact = add_prompt(project, "  " + base_text.upper() + " ")
    short = add_prompt(project, "Explain recursion")
    three = add_prompt(project, "Explain recursion simply")
    pii = add_prompt(project, "Write to me at jane.doe@example.com about " + paragraph(40, 20))
    prompts += [near, farther, exact, short, three, pii]
    prompts += [add_prompt(project, paragraph(10 + i)) for i in range(5)]
    responses = [
        add_demo(prompts[7], "Paris."),
        add_demo(prompts[8], "The answer is that the river carries the stone to the sea over many years."),
        add_demo(prompts[9], paragraph(70, 30)),
        add_demo(prompts[10], paragraph(70, 30)),
    ]
    services.project_curate(project_id=project.pk)
    return Curated(prompts=prompts, responses=responses, base=prompts[0], near=near, exact=exact, short=short)


def artifact(folder: Path, name: str) -> Path:
    """A tiny fake model folder, as training/tests/test_registry.py makes: the registry checks
    its digest, not its contents."""
    path = folder / name
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(name.encode() * 100)
    (path / "config.json").write_text(json.dumps({"name": name}))
    return path


def promoted_reward_models(project: Project, folder: Path) -> tuple[ModelVersion, ModelVersion]:
    """Two evaluated reward models, each promoted by the gate in turn: v2 serves, v1 served before."""
    versions = []
    for accuracy in (0.7, 0.8):
        version = training_services.model_version_create(
            project=project, kind=ModelKind.REWARD, base="tiny", snapshot=None
        )
        assert training_services.version_claim(version_id=version.pk)
        version = training_services.version_evaluated(
            version_id=version.pk,
            folder=artifact(folder, f"reward-{version.number}"),
            metrics={"accuracy": accuracy, "length_baseline_accuracy": 0.5},
        )
        previous = {"accuracy": versions[-1].metrics["accuracy"]} if versions else None
        assert training_services.model_promote_if_better(version=version, against_metrics=previous).passed
        versions.append(version)
    return versions[0], versions[1]


def failed_pipeline_run(project: Project) -> PipelineRun:
    """A run that snapshotted, then failed training the reward model twice."""
    started = timezone.now() - timedelta(minutes=5)
    return PipelineRun.objects.create(
        project=project,
        trigger="schedule",
        status=RunStatus.FAILED,
        started_at=started,
        finished_at=started + timedelta(seconds=95),
        error="reward: CUDA out of memory <script>alert(1)</script>",
        log="10:00:00 snapshot: done (v3)\n10:01:35 reward: FAILED: CUDA out of memory\n",
        steps=[
            {"name": "snapshot", "status": "done", "seconds": 12.5, "attempts": 1, "note": "v3"},
            {
                "name": "reward",
                "status": "failed",
                "attempts": 2,
                "started_at": (started + timedelta(seconds=13)).isoformat(),
                "finished_at": (started + timedelta(seconds=95)).isoformat(),
                "error": "CUDA out of memory",
            },
            {"name": "policy", "status": "pending"},
        ],
    )
