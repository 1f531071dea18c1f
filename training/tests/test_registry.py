"""The registry, the gate, deployments, rollback and lineage. Model folders here are plain
files: what is under test is the bookkeeping, and training has tests of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from curation.models import Snapshot, SnapshotItem
from feedback.models import Judgment
from feedback.tests.factories import make_project, make_task, make_user
from flywheel.errors import Conflict, InvalidInput
from flywheel.models import AuditLog, Role
from training import selectors, services
from training.models import (
    Deployment,
    GateDecision,
    GateSettings,
    ModelKind,
    ModelVersion,
    RewardGateRule,
    VersionStatus,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(db):  # type: ignore[no-untyped-def]
    return make_project(name="registry")


@pytest.fixture
def dave(db):  # type: ignore[no-untyped-def]
    return make_user("dave", Role.ADMIN)


@pytest.fixture
def carol(db):  # type: ignore[no-untyped-def]
    return make_user("carol", Role.CURATOR)


def artifact(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(name.encode() * 100)
    (folder / "config.json").write_text(json.dumps({"name": name}))
    return folder


def evaluated(project, kind: str, tmp_path: Path, metrics: dict, snapshot=None) -> ModelVersion:  # type: ignore[no-untyped-def]
    version = services.model_version_create(project=project, kind=kind, base="tiny", snapshot=snapshot)
    assert services.version_claim(version_id=version.pk)
    return services.version_evaluated(
        version_id=version.pk, folder=artifact(tmp_path, f"{kind}-{version.number}"), metrics=metrics
    )


def test_it_promotes_a_first_reward_model_that_beats_the_length_baseline(project, tmp_path):
    version = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7, "length_baseline_accuracy": 0.55}
    )
    decision = services.model_promote_if_better(version=version, against_metrics=None)
    assert decision.passed and decision.numbers["accuracy"] == 0.7
    assert services.active_deployment(project=project, kind=ModelKind.REWARD).version_id == version.pk
    version.refresh_from_db()
    assert version.status == VersionStatus.PROMOTED


def test_it_rejects_a_reward_model_that_loses_to_the_length_baseline(project, tmp_path):
    version = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.52, "length_baseline_accuracy": 0.6}
    )
    decision = services.model_promote_if_better(version=version, against_metrics=None)
    assert not decision.passed
    assert services.active_deployment(project=project, kind=ModelKind.REWARD) is None
    version.refresh_from_db()
    assert version.status == VersionStatus.REJECTED


@pytest.mark.parametrize(("new", "passed"), [(0.805, False), (0.81, True), (0.9, True)])
def test_it_needs_a_point_of_reward_accuracy_over_the_deployed_model(project, tmp_path, new, passed):
    first = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.8, "length_baseline_accuracy": 0.5})
    services.model_promote_if_better(version=first, against_metrics=None)
    second = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": new, "length_baseline_accuracy": 0.5}
    )
    decision = services.model_promote_if_better(version=second, against_metrics={"accuracy": 0.8})
    assert decision.passed is passed
    assert decision.against_id == first.pk
    assert decision.numbers["deployed_accuracy"] == 0.8
    deployed = services.active_deployment(project=project, kind=ModelKind.REWARD)
    assert deployed is not None and deployed.version_id == (second.pk if passed else first.pk)


@pytest.mark.parametrize(
    ("new", "paired", "passed"),
    [
        # Two points down on the split, but 3 pairs against 5 is no evidence of worse: promoted.
        (0.78, {"new_only_right": 3, "deployed_only_right": 5}, True),
        # Six pairs against none: p = 1/64, worse. Turned down.
        (0.74, {"new_only_right": 0, "deployed_only_right": 6}, False),
        # Not worse, but no better than "the longer reply wins": turned down.
        (0.5, {"new_only_right": 1, "deployed_only_right": 1}, False),
        # No paired counts (metrics from before they were kept): the margin rule decides.
        (0.78, None, False),
    ],
)
def test_it_promotes_a_reward_model_unless_it_is_significantly_worse(project, tmp_path, new, paired, passed):
    services.gate_settings(project=project)
    GateSettings.objects.filter(project=project).update(reward_rule=RewardGateRule.NOT_WORSE)
    first = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.8, "length_baseline_accuracy": 0.5})
    services.model_promote_if_better(version=first, against_metrics=None)
    metrics = {"accuracy": new, "length_baseline_accuracy": 0.5, **({"paired": paired} if paired else {})}
    second = evaluated(project, ModelKind.REWARD, tmp_path, metrics)
    decision = services.model_promote_if_better(version=second, against_metrics={"accuracy": 0.8})
    assert decision.passed is passed
    assert ("p_worse" in decision.numbers) is (paired is not None)
    deployed = services.active_deployment(project=project, kind=ModelKind.REWARD)
    assert deployed is not None and deployed.version_id == (second.pk if passed else first.pk)


@pytest.mark.parametrize(("ci_low", "passed"), [(0.49, False), (0.5, False), (0.53, True)])
def test_it_needs_the_policy_win_rate_ci_above_half(project, tmp_path, ci_low, passed):
    first = evaluated(project, ModelKind.POLICY, tmp_path, {"validation_loss": 2.0})
    assert services.model_promote_if_better(version=first, against_metrics=None).passed
    second = evaluated(
        project,
        ModelKind.POLICY,
        tmp_path,
        {
            "validation_loss": 1.8,
            "win_rate": ci_low + 0.1,
            "win_rate_ci_low": ci_low,
            "win_rate_ci_high": 0.9,
        },
    )
    assert services.model_promote_if_better(version=second, against_metrics=None).passed is passed


def test_it_rejects_a_first_policy_with_a_nan_loss(project, tmp_path):
    version = evaluated(project, ModelKind.POLICY, tmp_path, {"validation_loss": float("nan")})
    assert not services.model_promote_if_better(version=version, against_metrics=None).passed


def test_it_lets_an_admin_force_promote_and_audits_it(project, tmp_path, dave, carol):
    version = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.5, "length_baseline_accuracy": 0.6}
    )
    services.model_promote_if_better(version=version, against_metrics=None)
    with pytest.raises(Conflict):
        services.model_force_promote(version=version, actor=carol, reason="I like it")
    services.model_force_promote(version=version, actor=dave, reason="the eval set is broken this week")
    assert (
        services.active_deployment(project=project, kind=ModelKind.REWARD).action == Deployment.Action.FORCE
    )
    decision = GateDecision.objects.filter(version=version, forced=True).get()
    assert decision.actor == dave
    audit = AuditLog.objects.get(action="model.force_promote")
    assert audit.actor == dave and audit.reason == "the eval set is broken this week"


def test_it_rolls_back_to_an_earlier_promoted_version(project, tmp_path, carol):
    first = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7, "length_baseline_accuracy": 0.5})
    services.model_promote_if_better(version=first, against_metrics=None)
    second = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.8, "length_baseline_accuracy": 0.5}
    )
    services.model_promote_if_better(version=second, against_metrics={"accuracy": 0.7})
    services.model_rollback(
        project=project, kind=ModelKind.REWARD, to_version_id=first.pk, actor=carol, reason="bad"
    )
    active = services.active_deployment(project=project, kind=ModelKind.REWARD)
    assert (
        active is not None and active.version_id == first.pk and active.action == Deployment.Action.ROLLBACK
    )
    history = list(selectors.deployment_history(project_id=project.pk).values_list("version_id", "action"))
    assert history == [(first.pk, "rollback"), (second.pk, "promote"), (first.pk, "promote")]
    assert AuditLog.objects.filter(action="model.rollback", actor=carol).exists()
    never = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.1, "length_baseline_accuracy": 0.5})
    with pytest.raises(Conflict):
        services.model_rollback(project=project, kind=ModelKind.REWARD, to_version_id=never.pk, actor=carol)


def test_it_never_deploys_a_corrupt_or_missing_artifact(project, tmp_path):
    first = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7, "length_baseline_accuracy": 0.5})
    services.model_promote_if_better(version=first, against_metrics=None)
    corrupt = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.9, "length_baseline_accuracy": 0.5}
    )
    (Path(corrupt.artifact_path) / "model.safetensors").write_bytes(b"flipped bits")
    with pytest.raises(Conflict) as excinfo:
        services.model_promote_if_better(version=corrupt, against_metrics={"accuracy": 0.7})
    assert excinfo.value.code == "artifact_invalid"
    assert services.active_deployment(project=project, kind=ModelKind.REWARD).version_id == first.pk
    corrupt.refresh_from_db()
    assert "checksum" in corrupt.error
    missing = evaluated(
        project, ModelKind.REWARD, tmp_path, {"accuracy": 0.95, "length_baseline_accuracy": 0.5}
    )
    for file in Path(missing.artifact_path).iterdir():
        file.unlink()
    with pytest.raises(Conflict):
        services.model_promote_if_better(version=missing, against_metrics={"accuracy": 0.7})
    assert services.active_deployment(project=project, kind=ModelKind.REWARD).version_id == first.pk


def test_it_marks_a_failed_run_and_leaves_the_deployment_alone(project, tmp_path):
    first = evaluated(project, ModelKind.POLICY, tmp_path, {"validation_loss": 2.0})
    services.model_promote_if_better(version=first, against_metrics=None)
    doomed = services.model_version_create(project=project, kind=ModelKind.POLICY, base="tiny", snapshot=None)
    assert services.version_claim(version_id=doomed.pk)
    assert not services.version_claim(version_id=doomed.pk)  # a second worker gets nothing
    services.version_fail(version_id=doomed.pk, error="RuntimeError: CUDA out of memory")
    doomed.refresh_from_db()
    assert doomed.status == VersionStatus.FAILED and "out of memory" in doomed.error
    assert services.active_deployment(project=project, kind=ModelKind.POLICY).version_id == first.pk


def test_it_traces_lineage_both_ways(project, tmp_path):
    alice = make_user("alice")
    task = make_task(project)
    judgment = Judgment.objects.create(task=task, annotator=alice, choice="a")
    other = Judgment.objects.create(task=make_task(project), annotator=alice, choice="b")
    snapshot = Snapshot.objects.create(
        project=project, version=1, manifest={}, content_hash="0" * 64, directory=str(tmp_path)
    )
    item = SnapshotItem.objects.create(snapshot=snapshot, split="train", prompt=task.prompt, task=task)
    item.judgments.add(judgment)
    version = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7}, snapshot=snapshot)
    lineage = selectors.version_lineage(version=version)
    assert lineage["snapshot"] == snapshot.pk and lineage["judgments"] == [judgment.pk]
    assert lineage["tasks"] == [task.pk]
    assert list(selectors.models_trained_on_judgment(judgment=judgment)) == [version]
    assert list(selectors.models_trained_on_judgment(judgment=other)) == []


def test_a_warm_started_version_carries_its_ancestors_data_in_its_lineage(project, tmp_path):
    alice = make_user("alice")
    first_task, second_task = make_task(project), make_task(project)
    early = Judgment.objects.create(task=first_task, annotator=alice, choice="a")
    late = Judgment.objects.create(task=second_task, annotator=alice, choice="b")
    snapshots = []
    for number, (task, judgment) in enumerate([(first_task, early), (second_task, late)], start=1):
        snapshot = Snapshot.objects.create(
            project=project,
            version=number,
            manifest={},
            content_hash=str(number) * 64,
            directory=str(tmp_path),
        )
        # A curator removed the early judgment before the second snapshot: only the first holds it.
        item = SnapshotItem.objects.create(snapshot=snapshot, split="train", prompt=task.prompt, task=task)
        item.judgments.add(judgment)
        snapshots.append(snapshot)
    parent = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7}, snapshot=snapshots[0])
    child = services.model_version_create(
        project=project, kind=ModelKind.REWARD, base="ignored", snapshot=snapshots[1], parent=parent
    )
    grandchild = services.model_version_create(
        project=project, kind=ModelKind.REWARD, base="ignored", snapshot=snapshots[1], parent=parent
    )
    ModelVersion.objects.filter(pk=grandchild.pk).update(parent=child)
    grandchild.refresh_from_db()
    assert child.base == parent.artifact_path  # it trains from the parent's weights
    assert services.version_descends_from(grandchild, "tiny")
    assert not services.version_descends_from(grandchild, "ignored")
    lineage = selectors.version_lineage(version=grandchild)
    assert lineage["parent"] == child.pk and lineage["ancestors"] == [child.pk, parent.pk]
    assert lineage["snapshot"] == snapshots[1].pk
    assert lineage["snapshots"] == [snapshots[0].pk, snapshots[1].pk]
    assert lineage["judgments"] == sorted([early.pk, late.pk])
    assert lineage["tasks"] == sorted([first_task.pk, second_task.pk])
    # Both ways: the removed judgment still reached every descendant of the model that learned it.
    assert list(selectors.models_trained_on_judgment(judgment=early)) == [parent, child, grandchild]
    assert list(selectors.models_trained_on_judgment(judgment=late)) == [child, grandchild]
    assert selectors.version_lineage(version=parent)["judgments"] == [early.pk]
    # A loop made by hand in the database ends the walk instead of hanging it.
    ModelVersion.objects.filter(pk=parent.pk).update(parent=grandchild)
    assert [v.pk for v in services.version_ancestors(grandchild)] == [child.pk, parent.pk]
    ModelVersion.objects.filter(pk=parent.pk).update(parent=None)
    client = Client()
    client.force_login(make_user("cora", Role.CURATOR))
    listed = client.get(reverse("api-judgment-models", args=[early.pk])).json()["models"]
    assert [(m["id"], m["through"]) for m in listed] == [
        (parent.pk, "snapshot"),
        (child.pk, "weights"),
        (grandchild.pk, "weights"),
    ]
    lineage = client.get(reverse("api-lineage", args=[grandchild.pk])).json()
    assert lineage["ancestors"] == [child.pk, parent.pk] and early.pk in lineage["judgments"]


def test_a_registered_base_folder_counts_as_the_base_it_is_served_from(project, tmp_path):
    """The demo serves SmolLM2's folder under a display name; warm start from the configured
    folder must still see the deployed model as descending from it."""
    folder = artifact(tmp_path, "smollm2")
    served = services.model_base_deploy(
        project=project, kind=ModelKind.POLICY, folder=folder, base="SmolLM2-135M-Instruct"
    ).version
    child = services.model_version_create(
        project=project, kind=ModelKind.POLICY, base="ignored", snapshot=None, parent=served
    )
    for version in (served, child):
        assert services.version_descends_from(version, "SmolLM2-135M-Instruct")
        assert services.version_descends_from(version, str(folder))
        assert services.version_descends_from(version, str(tmp_path / "." / "smollm2"))
        assert not services.version_descends_from(version, str(artifact(tmp_path, f"other-{version.pk}")))
    # A trained version's folder (it has a snapshot) is its own, not a base it began from.
    snapshot = Snapshot.objects.create(
        project=project, version=1, manifest={}, content_hash="0" * 64, directory=str(tmp_path)
    )
    trained = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7}, snapshot=snapshot)
    assert not services.version_descends_from(trained, trained.artifact_path)
    assert services.version_descends_from(trained, "tiny")


def test_a_version_continues_only_from_a_finished_version_of_its_kind_and_project(project, tmp_path):
    reward = evaluated(project, ModelKind.REWARD, tmp_path, {"accuracy": 0.7})
    queued = services.model_version_create(project=project, kind=ModelKind.REWARD, base="tiny", snapshot=None)
    elsewhere = make_project(name="elsewhere")
    attempts = [
        dict(project=project, kind=ModelKind.POLICY, parent=reward),
        dict(project=elsewhere, kind=ModelKind.REWARD, parent=reward),
        dict(project=project, kind=ModelKind.REWARD, parent=queued),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput) as caught:
            services.model_version_create(base="tiny", snapshot=None, **attempt)
        assert caught.value.field == "parent"
    assert ModelVersion.objects.filter(parent__isnull=False).count() == 0


def test_an_admin_switches_the_reward_gate_to_not_worse_in_the_django_admin(project, dave):
    gate = services.gate_settings(project=project)
    client = Client()
    client.force_login(dave)
    page = reverse("admin:training_gatesettings_change", args=[gate.pk])
    assert client.get(page).status_code == 200
    form = {
        "reward_rule": RewardGateRule.NOT_WORSE,
        "reward_min_gain_points": "1.0",
        "policy_min_ci_low": "0.5",
        "policy_eval_prompts": "32",
    }
    assert client.post(page, form).status_code == 302
    gate.refresh_from_db()
    assert gate.reward_rule == RewardGateRule.NOT_WORSE
    assert gate.project_id == project.pk
