from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from curation import services as curation
from curation.models import Snapshot
from curation.snapshots import validation_prompt_ids
from feedback.models import ComparisonTask, Judgment, Prompt, PromptSource, ResponseSource
from feedback.tests.factories import make_project, make_response, make_user
from flywheel.errors import Conflict, InvalidInput
from training.config import TRAIN_OPTIONS
from training.models import ModelKind, VersionStatus
from training.services import active_deployment
from workers import pipeline
from workers.models import PipelineRun, RunStatus, SelectionPolicy
from workers.selection import uncertainty

THINGS = {"sky": "blue", "grass": "green", "sun": "yellow", "snow": "white", "coal": "black", "rose": "red"}
WHEN = ["today", "at noon", "in winter", "in the evening", "in spring", "after the rain"]


def pairs_queued(run: PipelineRun) -> tuple[str, list[ComparisonTask]]:
    """step_pairs' note, and the tasks it queued."""
    tasks = ComparisonTask.objects.filter(project=run.project)
    before = tasks.count()
    note = pipeline.step_pairs(run=run)
    return note, list(tasks.order_by("-id")[: tasks.count() - before])


def seed_project(name: str = "loop", judges: int = 3):  # type: ignore[no-untyped-def]
    """Prompts with a demonstration each, and comparisons where the polite reply wins."""
    project = make_project(name=name)
    annotators = [make_user(f"{name}-judge{i}") for i in range(judges)]
    for thing, colour in THINGS.items():
        for when in WHEN:
            prompt = Prompt.objects.create(
                project=project, text=f"what color is the {thing} {when} ?", source=PromptSource.SEED
            )
            make_response(
                prompt,
                f"thanks for asking . the {thing} is {colour} {when} .",
                source=ResponseSource.DEMONSTRATION,
            )
            polite = make_response(prompt, f"please note the {thing} is {colour} {when}")
            blunt = make_response(prompt, f"the {thing} is {colour} {when} really truly")
            task = ComparisonTask.objects.create(
                project=project, prompt=prompt, response_a=blunt, response_b=polite
            )
            for annotator in annotators:
                Judgment.objects.create(task=task, annotator=annotator, choice="b", strength="clear")
    curation.project_curate(project_id=project.pk)
    return project


@pytest.mark.django_db
def test_it_triggers_on_enough_new_items_or_on_age():
    project = seed_project(judges=1)
    cfg = pipeline.pipeline_settings(project=project)
    cfg.min_new_items = 1000
    cfg.save()
    due, reason = pipeline.retrain_due(project=project)
    assert not due and "72" in reason  # 36 judgments + 36 kept demonstrations
    cfg.min_new_items = 72
    cfg.save()
    assert pipeline.retrain_due(project=project)[0]
    # After a successful run, only what arrived since its snapshot counts...
    snapshot = Snapshot.objects.create(
        project=project, version=1, manifest={}, content_hash="0" * 64, directory="/x"
    )
    PipelineRun.objects.create(
        project=project,
        trigger="t",
        status=RunStatus.SUCCEEDED,
        snapshot=snapshot,
        finished_at=timezone.now(),
    )
    assert not pipeline.retrain_due(project=project)[0]
    task = ComparisonTask.objects.filter(project=project).first()
    Judgment.objects.create(task=task, annotator=make_user("late"), choice="a")
    assert pipeline.new_items_since(project=project, since=snapshot.created_at) == 1
    assert not pipeline.retrain_due(project=project)[0]
    # ...unless the last snapshot is older than the maximum age.
    later = timezone.now() + timedelta(hours=cfg.max_age_hours + 1)
    due, reason = pipeline.retrain_due(project=project, now=later)
    assert due and "older than" in reason
    cfg.enabled = False
    cfg.save()
    assert not pipeline.retrain_due(project=project, now=later)[0]


@pytest.mark.django_db(transaction=True)
def test_it_allows_one_run_per_project_under_concurrent_triggers(empty_queues):
    if connection.vendor != "postgresql":
        pytest.skip("the lock under test is PostgreSQL's; run with DATABASE_URL")
    project = make_project(name="lock")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def trigger() -> None:
        try:
            barrier.wait()
            pipeline.pipeline_run_start(project=project, trigger="race")
            outcomes.append("started")
        except Conflict:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused"] * 7 + ["started"]
    assert PipelineRun.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_a_step_queued_for_a_run_that_was_deleted_finishes_quietly(caplog):
    project = make_project(name="gone")
    run = PipelineRun.objects.create(
        project=project, trigger="test", steps=[{"name": n, "status": "pending"} for n in pipeline.STEPS]
    )
    run_id = run.pk
    project.delete()  # the run goes with it, while its chain's messages are still queued
    assert pipeline.step_begin(run_id=run_id, name="snapshot") is None
    pipeline.run_finish(run_id=run_id)
    assert f"pipeline run {run_id} no longer exists" in caplog.text


@pytest.mark.django_db
@pytest.mark.slow
def test_it_runs_every_step_and_records_what_it_made(tiny_encoder, tiny_lm, settings, tmp_path):
    from training.tests.conftest import REWARD_DEFAULTS, SFT_DEFAULTS

    settings.MODEL_STORE = tmp_path / "models"
    settings.EXPORT_DIR = tmp_path / "exports"
    project = seed_project()
    cfg = pipeline.pipeline_settings(project=project)
    cfg.reward_base, cfg.policy_base = str(tiny_encoder), str(tiny_lm)
    cfg.reward_config = {k: v for k, v in REWARD_DEFAULTS.items() if k in TRAIN_OPTIONS}
    cfg.policy_config = {k: v for k, v in SFT_DEFAULTS.items() if k in TRAIN_OPTIONS}
    cfg.candidates_per_prompt = 4
    cfg.prompts_per_run = 3
    cfg.generation_max_new_tokens = 8
    cfg.save()
    run = PipelineRun.objects.create(
        project=project, trigger="test", steps=[{"name": n, "status": "pending"} for n in pipeline.STEPS]
    )
    note = pipeline.step_snapshot(run=run)
    run.refresh_from_db()
    assert run.snapshot is not None and "preferences_train" in note
    assert pipeline.step_snapshot(run=run).startswith("snapshot")  # idempotent
    status, note = pipeline.step_train(run=run, kind=ModelKind.REWARD)
    run.refresh_from_db()
    assert status == "done" and run.reward_version.status == VersionStatus.PROMOTED, note
    status, note = pipeline.step_train(run=run, kind=ModelKind.POLICY)
    run.refresh_from_db()
    assert status == "done" and run.policy_version.status == VersionStatus.PROMOTED, note
    assert active_deployment(project=project, kind=ModelKind.POLICY).version_id == run.policy_version_id
    before = project.responses.filter(source=ResponseSource.MODEL).count()
    note = pipeline.step_generate(run=run)
    made = project.responses.filter(source=ResponseSource.MODEL)
    assert made.count() > before and set(made.values_list("model_name", flat=True)) == {"policy-v1"}, note
    curation.project_curate(project_id=project.pk)
    tasks_before = ComparisonTask.objects.filter(project=project).count()
    note = pipeline.step_pairs(run=run)
    new_tasks = ComparisonTask.objects.filter(project=project).order_by("-id")[
        : ComparisonTask.objects.filter(project=project).count() - tasks_before
    ]
    assert new_tasks, note
    assert all(t.suggested_preference is not None for t in new_tasks)
    priorities = [
        t.priority
        for t in ComparisonTask.objects.filter(project=project, suggested_preference__isnull=False).order_by(
            "-priority"
        )
    ]
    assert priorities == sorted(priorities, reverse=True) and min(priorities) >= 0 and max(priorities) <= 1
    # The information policy reads the reward model's features too, in the same pass.
    cfg.selection_policy = SelectionPolicy.INFORMATION
    cfg.save()
    note, made = pairs_queued(run)
    assert made and all(t.suggested_preference is not None and 0 <= t.priority < 1 for t in made), note
    assert "information" in note
    ComparisonTask.objects.filter(pk__in=[t.pk for t in made]).delete()
    # The contrast policy weighs each pair's doubt by its replies' embedding distance, at most 1.
    cfg.selection_policy = SelectionPolicy.CONTRAST
    cfg.save()
    note, made = pairs_queued(run)
    assert made and "contrast" in note
    held = set(validation_prompt_ids(project=project))
    ranked = [t for t in made if t.prompt_id not in held]
    assert ranked and all(0 <= t.priority <= uncertainty(t.suggested_preference) + 1e-6 for t in ranked)
    assert any(t.priority < uncertainty(t.suggested_preference) - 1e-3 for t in ranked)
    # The importance policy stores each pair's training weight, 1/π scaled to a mean of 1.
    # The contrast policy's pairs are unasked again, and the importance policy gets fewer tasks
    # than there are unseen pairs, so that the draw is a draw (every π = 1 would weigh all alike).
    ComparisonTask.objects.filter(pk__in=[t.pk for t in made]).delete()
    cfg.selection_policy, tasks_per_run, cfg.tasks_per_run = SelectionPolicy.IMPORTANCE, cfg.tasks_per_run, 6
    cfg.save()
    note, made = pairs_queued(run)
    assert made and "importance" in note
    weights = [t.training_weight for t in made if t.prompt_id not in validation_prompt_ids(project=project)]
    assert len(weights) >= 2 and sum(weights) / len(weights) == pytest.approx(1.0)
    assert all(w > 0 for w in weights) and len(set(weights)) > 1
    cfg.tasks_per_run = tasks_per_run
    # The committee policy scores with the deployed model and the newest other finished versions:
    # here a copy of the deployed one, turned down, and a version whose artifact is corrupt.
    import shutil

    from training import inference
    from training.models import ModelVersion
    from training.services import model_version_register

    folder = tmp_path / "copy"
    shutil.copytree(run.reward_version.artifact_path, folder)
    twin = model_version_register(
        project=project, kind=ModelKind.REWARD, folder=folder, base="copy", actor=None
    )
    ModelVersion.objects.filter(pk=twin.pk).update(status=VersionStatus.REJECTED)
    broken = model_version_register(
        project=project, kind=ModelKind.REWARD, folder=folder, base="copy", actor=None
    )
    ModelVersion.objects.filter(pk=broken.pk).update(status=VersionStatus.REJECTED, artifact_sha256="0" * 64)
    members = inference.SLOTS.committee(project.pk)
    assert [m.version_id for m in members] == [run.reward_version_id, twin.pk]
    served = inference.committee_scores(project_id=project.pk, prompt="hi", responses=["a", "b c"])
    assert served["versions"] == [run.reward_version_id, twin.pk]
    assert served["scores"][0] == pytest.approx(served["scores"][1])
    cfg.selection_policy = SelectionPolicy.COMMITTEE
    cfg.save()
    note, made = pairs_queued(run)
    assert made and all(t.suggested_preference is not None and 0 <= t.priority <= 1 for t in made), note
    assert "committee" in note


@pytest.mark.django_db
@pytest.mark.slow
def test_warm_start_continues_from_the_deployed_version_and_only_from_its_exact_weights(
    tiny_encoder, tiny_lm, settings, tmp_path
):
    import json
    import shutil

    from training.models import ModelVersion
    from training.runtime import METADATA_FILE
    from training.tests.conftest import REWARD_DEFAULTS, SFT_DEFAULTS

    settings.MODEL_STORE = tmp_path / "models"
    settings.EXPORT_DIR = tmp_path / "exports"
    project = seed_project("warm")
    cfg = pipeline.pipeline_settings(project=project)
    cfg.reward_base, cfg.policy_base = str(tiny_encoder), str(tiny_lm)
    cfg.reward_config = {k: v for k, v in REWARD_DEFAULTS.items() if k in TRAIN_OPTIONS}
    cfg.policy_config = {k: v for k, v in SFT_DEFAULTS.items() if k in TRAIN_OPTIONS}
    cfg.reward_warm_start = cfg.policy_warm_start = True
    cfg.save()

    def trained(*kinds: str) -> PipelineRun:
        run = PipelineRun.objects.create(
            project=project, trigger="test", steps=[{"name": n, "status": "pending"} for n in pipeline.STEPS]
        )
        try:
            pipeline.step_snapshot(run=run)
            run.refresh_from_db()
            for kind in kinds:
                pipeline.step_train(run=run, kind=kind)
        finally:
            # One run at a time per project: this one is over, whatever happened.
            PipelineRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
        run.refresh_from_db()
        return run

    # Nothing is deployed yet: the first versions start from the configured bases.
    first = trained(ModelKind.REWARD, ModelKind.POLICY)
    assert first.reward_version.parent is None and first.reward_version.base == str(tiny_encoder)
    assert first.policy_version.parent is None and first.policy_version.base == str(tiny_lm)
    deployed = {kind: active_deployment(project=project, kind=kind).version for kind in ModelKind.values}
    assert deployed == {ModelKind.REWARD: first.reward_version, ModelKind.POLICY: first.policy_version}

    # Then each kind continues from the deployed version's weights, and records which.
    second = trained(ModelKind.REWARD, ModelKind.POLICY)
    for version in (second.reward_version, second.policy_version):
        parent = deployed[version.kind]
        assert version.parent_id == parent.pk and version.base == parent.artifact_path
        assert version.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED), version.error
        written = json.loads((Path(version.artifact_path) / METADATA_FILE).read_text())
        assert written["base"] == parent.artifact_path

    # A deployed artifact changed on disk since it was registered: nothing trains from it.
    serving = active_deployment(project=project, kind=ModelKind.REWARD).version
    weights = next(Path(serving.artifact_path).glob("*.safetensors"))
    original = weights.read_bytes()
    weights.write_bytes(original + b"tampered")
    with pytest.raises(InvalidInput, match="checksum"):
        trained(ModelKind.REWARD)
    refused = ModelVersion.objects.filter(project=project, kind=ModelKind.REWARD).order_by("-number").first()
    assert refused.parent_id == serving.pk and refused.status == VersionStatus.FAILED
    assert f"cannot continue from {serving}" in refused.error and "checksum" in refused.error
    weights.write_bytes(original)

    # A new base starts a new line: the deployed model does not descend from it.
    other_base = tmp_path / "other-encoder"
    shutil.copytree(tiny_encoder, other_base)
    cfg.reward_base = str(other_base)
    cfg.save()
    fresh = trained(ModelKind.REWARD)
    assert fresh.reward_version.parent is None and fresh.reward_version.base == str(other_base)
    assert fresh.reward_version.status in (VersionStatus.PROMOTED, VersionStatus.REJECTED)
