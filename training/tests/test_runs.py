"""Train, evaluate, gate and deploy through the registry, on tiny models, against the DB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from curation.models import Snapshot
from feedback.models import ComparisonTask, Prompt, PromptSource
from feedback.tests.factories import make_project
from training import runs, services
from training.config import TRAIN_OPTIONS
from training.models import ModelKind, ModelVersion, VersionStatus
from training.tests.conftest import REWARD_DEFAULTS, SFT_DEFAULTS

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _model_store(settings, tmp_path):
    settings.MODEL_STORE = tmp_path / "models"


@pytest.fixture
def project(db):  # type: ignore[no-untyped-def]
    return make_project(name="training")


@pytest.fixture
def snapshot(project, snapshot_dir: Path) -> Snapshot:
    return Snapshot.objects.create(
        project=project, version=1, manifest={}, content_hash="0" * 64, directory=str(snapshot_dir)
    )


def version(project, snapshot, kind: str, base: Path, **config) -> ModelVersion:  # type: ignore[no-untyped-def]
    defaults = REWARD_DEFAULTS if kind == ModelKind.REWARD else SFT_DEFAULTS
    options = {k: v for k, v in {**defaults, **config}.items() if k in TRAIN_OPTIONS}
    return services.model_version_create(
        project=project, kind=kind, base=str(base), snapshot=snapshot, config=options
    )


def test_it_trains_gates_and_deploys_both_models(project, snapshot, tiny_encoder, tiny_lm, snapshot_dir):
    reward = version(project, snapshot, ModelKind.REWARD, tiny_encoder)
    decision = runs.version_train(version_id=reward.pk)
    reward.refresh_from_db()
    assert reward.status == VersionStatus.PROMOTED, reward.error
    assert decision is not None and decision.passed
    assert reward.metrics["accuracy"] > reward.metrics["length_baseline_accuracy"]
    assert reward.metrics["evaluated_on"] == "validation"
    assert reward.progress["step"] == reward.progress["total"] > 0
    assert len(reward.artifact_sha256) == 64
    # A second reward model is compared with the deployed one pair by pair, for the gate.
    again = version(project, snapshot, ModelKind.REWARD, tiny_encoder, seed=1)
    runs.version_train(version_id=again.pk)
    again.refresh_from_db()
    paired = again.metrics["paired"]
    assert paired["new_only_right"] + paired["deployed_only_right"] <= again.metrics["n"]
    assert "outcomes" not in again.metrics and "outcomes" not in again.metrics["deployed"]

    first = version(project, snapshot, ModelKind.POLICY, tiny_lm)
    assert runs.version_train(version_id=first.pk).passed  # type: ignore[union-attr]
    # The validation prompts exist in the project, so the head-to-head pairs become tasks.
    lines = (snapshot_dir / "sft_validation.jsonl").read_text().splitlines()
    prompts = [json.loads(line)["messages"][0]["content"] for line in lines]
    for text in prompts:
        Prompt.objects.create(project=project, text=text, source=PromptSource.SEED)
    second = version(project, snapshot, ModelKind.POLICY, tiny_lm, seed=1)
    decision = runs.version_train(version_id=second.pk)
    second.refresh_from_db()
    assert decision is not None and decision.against_id == first.pk
    assert second.metrics["win_rate"] is not None and second.metrics["win_rate_ci_low"] is not None
    assert decision.passed == (second.metrics["win_rate_ci_low"] > 0.5)
    deployed = services.active_deployment(project=project, kind=ModelKind.POLICY)
    assert deployed is not None and deployed.version_id == (second.pk if decision.passed else first.pk)
    h2h = ComparisonTask.objects.filter(
        project=project, external_id__startswith=f"h2h-{project.pk}-policy-v2-"
    )
    assert h2h.exists()
    assert {h2h.first().response_a.model_name, h2h.first().response_b.model_name} == {
        "policy-v2",
        "policy-v1",
    }
    # Running the step again (a redelivered task) changes nothing.
    count = h2h.count()
    runs.version_train(version_id=second.pk)
    assert h2h.count() == count


def _write(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_reward_gate_judges_on_gold_pairs_beside_the_validation_split(
    project, tiny_encoder, snapshot_dir, tmp_path
):
    from training.evaluate import evaluate_reward

    data = Path(shutil.copytree(snapshot_dir, tmp_path / "snapshot"))
    lines = (data / "preferences_validation.jsonl").read_text().splitlines()
    validation = [json.loads(line) for line in lines]
    nv = len(validation)
    # Ten validation pairs with the answer the other way round, as gold: the model gets exactly
    # as many of them wrong as it gets the originals right.
    flipped = [
        {**row, "chosen": row["rejected"], "rejected": row["chosen"], "id": f"gold-{i}", "gold": True}
        for i, row in enumerate(validation[:10])
    ]
    _write(data / "preferences_gold.jsonl", flipped)
    snapshot = Snapshot.objects.create(
        project=project, version=1, manifest={}, content_hash="0" * 64, directory=str(data)
    )
    reward = version(project, snapshot, ModelKind.REWARD, tiny_encoder)
    decision = runs.version_train(version_id=reward.pk)
    reward.refresh_from_db()
    metrics = reward.metrics
    assert metrics["evaluated_on"] == "validation+gold"
    assert (metrics["n"], metrics["gold_n"], metrics["validation_n"]) == (nv + 10, 10, nv)
    originals = evaluate_reward(Path(reward.artifact_path), _write(tmp_path / "ten.jsonl", validation[:10]))
    assert metrics["gold_accuracy"] == pytest.approx(1 - originals["accuracy"])
    both = (metrics["validation_accuracy"] * nv + metrics["gold_accuracy"] * 10) / (nv + 10)
    assert metrics["accuracy"] == pytest.approx(both)
    assert decision is not None
    assert decision.numbers["gold_accuracy"] == pytest.approx(metrics["gold_accuracy"])

    # Switched off per project, the gate is back to the validation split alone.
    gate = services.gate_settings(project=project)
    gate.reward_use_gold = False
    gate.save()
    again = version(project, snapshot, ModelKind.REWARD, tiny_encoder, seed=1)
    runs.version_train(version_id=again.pk)
    again.refresh_from_db()
    assert again.metrics["evaluated_on"] == "validation" and "gold_n" not in again.metrics
    assert again.metrics["n"] == nv


def test_it_marks_a_crashed_run_failed_and_keeps_the_deployed_model(
    project, snapshot, tiny_encoder, tmp_path
):
    good = version(project, snapshot, ModelKind.REWARD, tiny_encoder)
    runs.version_train(version_id=good.pk)
    broken = version(project, snapshot, ModelKind.REWARD, tmp_path / "no-such-base")
    # Whatever the loader raises, the version row must record it.
    with pytest.raises(Exception):
        runs.version_train(version_id=broken.pk)
    broken.refresh_from_db()
    assert broken.status == VersionStatus.FAILED and broken.error
    assert services.active_deployment(project=project, kind=ModelKind.REWARD).version_id == good.pk
