"""Training a registered version end to end: train, evaluate against the deployed model on the
same held-out split, gate, deploy. Runs on the training worker; imports torch lazily."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from feedback.models import ComparisonTask, Response, ResponseSource
from flywheel.errors import InvalidInput
from training import services
from training.artifacts import verify_folder
from training.config import TRAIN_OPTIONS
from training.evaluate import held_out_files
from training.models import GateDecision, ModelKind, ModelVersion, VersionStatus

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 2.0


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def version_train(*, version_id: int) -> GateDecision | None:
    """Train, evaluate and gate one version. Safe to call again after a crash: a version that
    is already evaluated only re-runs the gate; one left in `training` resumes from its last
    checkpoint; a finished one is left alone."""
    version = ModelVersion.objects.select_related("snapshot", "project", "parent").get(pk=version_id)
    if version.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED, VersionStatus.RETIRED):
        return version.gate_decisions.first()
    if version.status == VersionStatus.FAILED:
        return None
    if version.status == VersionStatus.QUEUED and not services.version_claim(version_id=version.pk):
        version.refresh_from_db()
    if version.snapshot is None:
        services.version_fail(version_id=version.pk, error="a trained version needs a snapshot")
        return None
    deployed = services.active_deployment(project=version.project_id, kind=version.kind)
    if version.status != VersionStatus.EVALUATED:
        try:
            _train_and_evaluate(version, deployed.version if deployed else None)
        except Exception as exc:
            logger.exception("training %s failed", version)
            services.version_fail(version_id=version.pk, error=services.describe_exception(exc))
            raise
        version.refresh_from_db()
    against = version.metrics.get("deployed") if deployed else None
    decision = services.model_promote_if_better(version=version, against_metrics=against)
    if version.kind == ModelKind.POLICY:
        head_to_head_tasks_create(version=version)
    return decision


def _train_and_evaluate(version: ModelVersion, deployed: ModelVersion | None) -> None:
    from training.config import RewardTrainConfig, SFTTrainConfig
    from training.evaluate import discordant_pairs, evaluate_policy, evaluate_reward

    assert version.snapshot is not None
    data_dir = Path(version.snapshot.directory)
    out = services.version_output_dir(version)
    base = Path(version.base)
    config = {k: v for k, v in version.config.items() if k in TRAIN_OPTIONS}

    def on_progress(progress: dict[str, Any]) -> None:
        services.version_progress(version_id=version.pk, progress=services.json_safe(progress))

    if version.parent is not None:
        # Warm start: continue only from the exact weights that were registered.
        problem = verify_folder(base, version.parent.artifact_sha256)
        if problem:
            raise InvalidInput(f"cannot continue from {version.parent}: {problem}", field="parent")
    started = time.monotonic()
    gate = services.gate_settings(project=version.project)
    judged_on, split = held_out_files(data_dir, version.kind, gold=gate.reward_use_gold)
    held_out = judged_on[0]
    metrics: dict[str, Any] = {"evaluated_on": split, "against_number": deployed.number if deployed else None}
    if version.kind == ModelKind.REWARD:
        from training.reward import train_reward

        result = train_reward(
            RewardTrainConfig(data_dir=data_dir, base=base, out=out, **config),
            on_progress=on_progress,
            progress_interval_seconds=PROGRESS_INTERVAL_SECONDS,
        )
        metrics.update(evaluate_reward(result.output_dir, judged_on, outcomes=True))
        outcomes = metrics.pop("outcomes")
        if deployed is not None:
            # The deployed model is judged on the very same pairs: that is the comparison. Pair by
            # pair, too, for the gate's sign test (see gate_evaluate).
            against = evaluate_reward(Path(deployed.artifact_path), judged_on, outcomes=True)
            better, worse = discordant_pairs(outcomes, against.pop("outcomes"))
            metrics["deployed"] = services.json_safe(against)
            metrics["paired"] = {"new_only_right": better, "deployed_only_right": worse}
    else:
        from training.sft import train_sft

        result = train_sft(
            SFTTrainConfig(data_dir=data_dir, base=base, out=out, **config),
            on_progress=on_progress,
            progress_interval_seconds=PROGRESS_INTERVAL_SECONDS,
        )
        reward = services.active_deployment(project=version.project_id, kind=ModelKind.REWARD)
        prompts = [row["messages"][0]["content"] for row in _rows(held_out)]
        prompts = prompts[: gate.policy_eval_prompts]
        if reward is not None and deployed is not None and prompts:
            evaluation = evaluate_policy(
                result.output_dir,
                Path(deployed.artifact_path),
                Path(reward.version.artifact_path),
                prompts,
                n_samples=1,
                seed=int(config.get("seed", 0)),
                sft_validation=held_out,
                max_new_tokens=int(version.config.get("eval_max_new_tokens", 64)),
            )
            ci = evaluation.get("win_rate_ci") or (None, None)
            metrics.update(
                validation_loss=evaluation.get("validation_loss_new"),
                deployed_validation_loss=evaluation.get("validation_loss_deployed"),
                win_rate=evaluation.get("win_rate"),
                win_rate_ci_low=ci[0],
                win_rate_ci_high=ci[1],
                reward_version=reward.version_id,
                pairs=evaluation.get("pairs", [])[:64],
            )
        else:
            from training.sft import validation_loss

            metrics["validation_loss"] = validation_loss(result.output_dir, held_out)
            metrics["win_rate_note"] = "no deployed policy and reward model to compare against"
    metrics["train"] = result.as_json()
    metrics["wall_seconds"] = round(time.monotonic() - started, 3)
    if split == "train" and deployed is not None:
        # Without held-out data a rematch against the deployed model would be judged on data the
        # new model trained on; drop the comparison so the gate refuses rather than flatters.
        metrics.pop("deployed", None)
        metrics["win_rate_ci_low"] = None
    services.version_evaluated(version_id=version.pk, folder=result.output_dir, metrics=metrics)


def head_to_head_tasks_create(*, version: ModelVersion) -> int:
    """Turn the policy evaluation's sampled pairs into comparison tasks, so humans check what
    the reward model claims. Idempotent: task external ids name the version and the pair."""
    pairs = version.metrics.get("pairs") or []
    if not pairs or version.snapshot is None:
        return 0
    from feedback.models import Prompt

    created = 0
    prompts = {
        p.text: p
        for p in Prompt.objects.filter(
            project_id=version.project_id, text__in=[pair["prompt"] for pair in pairs]
        )
    }
    deployed_name = f"policy-v{version.metrics.get('against_number', 'deployed')}"
    for index, pair in enumerate(pairs):
        prompt = prompts.get(pair["prompt"])
        if (
            prompt is None
            or not pair.get("new")
            or not pair.get("deployed")
            or pair["new"] == pair["deployed"]
        ):
            continue
        external_id = f"h2h-{version.project_id}-policy-v{version.number}-{index}"
        if ComparisonTask.objects.filter(project_id=version.project_id, external_id=external_id).exists():
            continue
        with transaction.atomic():
            new = Response.objects.create(
                project_id=version.project_id,
                prompt=prompt,
                text=pair["new"],
                source=ResponseSource.MODEL,
                model_name=f"policy-v{version.number}",
            )
            old = Response.objects.create(
                project_id=version.project_id,
                prompt=prompt,
                text=pair["deployed"],
                source=ResponseSource.MODEL,
                model_name=deployed_name,
            )
            ComparisonTask.objects.create(
                project_id=version.project_id,
                prompt=prompt,
                response_a=new,
                response_b=old,
                priority=10.0,
                external_id=external_id,
            )
        created += 1
    return created


def default_base(kind: str) -> str:
    if kind == ModelKind.REWARD:
        from training.reward import default_reward_base

        return str(default_reward_base())
    return str(Path(settings.DATA_DIR) / "bases" / "smollm2-135m-instruct")
