"""The model registry: versions, training runs, the promotion gate, deployments, rollback.

torch is imported only inside the functions that train or evaluate (they run on the
training worker); registering, gating and promoting are plain database work.
"""

from __future__ import annotations

import logging
import math
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from curation.models import Snapshot
from feedback.models import Project
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.models import User
from flywheel.services import audit_record
from training.artifacts import folder_digest, verify_folder
from training.evaluate import sign_test_p
from training.models import (
    Deployment,
    GateDecision,
    GateSettings,
    ModelKind,
    ModelVersion,
    RewardGateRule,
    VersionStatus,
)

logger = logging.getLogger(__name__)

# Under the not_worse rule, a reward model is turned down when a one-sided sign test on the
# validation pairs it and the deployed model order differently says it is worse at this level.
NOT_WORSE_P = 0.05


def gate_settings(*, project: Project) -> GateSettings:
    found, _ = GateSettings.objects.get_or_create(project=project)
    return found


def active_deployment(*, project: Project | int, kind: str) -> Deployment | None:
    project_id = project if isinstance(project, int) else project.pk
    return (
        Deployment.objects.filter(project_id=project_id, kind=kind, ended_at__isnull=True)
        .select_related("version")
        .first()
    )


def model_version_create(
    *,
    project: Project,
    kind: str,
    base: str,
    snapshot: Snapshot | None,
    config: dict[str, Any] | None = None,
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """A queued version. With `parent` it continues from that version's weights (warm start): its
    base is the parent's artifact, and the parent's data joins its lineage."""
    if kind not in ModelKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(ModelKind.values)}", field="kind")
    if snapshot is not None and snapshot.project_id != project.pk:
        raise InvalidInput("The snapshot belongs to another project", field="snapshot")
    if parent is not None:
        if parent.project_id != project.pk or parent.kind != kind:
            raise InvalidInput(
                f"A {kind} version can only continue from a {kind} version of its project", field="parent"
            )
        if not parent.artifact_path or not parent.artifact_sha256:
            raise InvalidInput(f"{parent} has no finished artifact to continue from", field="parent")
        base = parent.artifact_path
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        number = (
            ModelVersion.objects.filter(project=project, kind=kind).aggregate(n=Max("number"))["n"] or 0
        ) + 1
        return ModelVersion.objects.create(
            project=project,
            kind=kind,
            number=number,
            base=base,
            snapshot=snapshot,
            config=config or {},
            parent=parent,
        )


def version_ancestors(version: ModelVersion) -> list[ModelVersion]:
    """The versions whose weights a version continued from, nearest first (one query)."""
    if version.parent_id is None:
        return []
    line = {
        v.pk: v
        for v in ModelVersion.objects.filter(project_id=version.project_id, kind=version.kind).only(
            "id", "project_id", "kind", "number", "parent_id", "snapshot_id", "base"
        )
    }
    found: list[ModelVersion] = []
    seen = {version.pk}
    # A version can only continue from an older one, so the chain ends; `seen` makes sure of it
    # even if rows were edited by hand.
    while version.parent_id is not None and version.parent_id in line and version.parent_id not in seen:
        version = line[version.parent_id]
        seen.add(version.pk)
        found.append(version)
    return found


def version_descends_from(version: ModelVersion, base: str) -> bool:
    """Whether the chain of warm starts behind a version began from `base`: the first version's
    base, or, when that version is a registered folder (not trained here, so without a
    snapshot: a base model served as it is, like the demo's first policy, whose base is a
    display name), the folder itself."""
    chain = version_ancestors(version)
    root = chain[-1] if chain else version
    names = {root.base}
    if root.snapshot_id is None and root.artifact_path:
        names.add(root.artifact_path)
    return any(_same_base(name, base) for name in names)


def _same_base(a: str, b: str) -> bool:
    """The same base: the same name, or two spellings of one folder."""
    if a == b:
        return True
    first, second = Path(a), Path(b)
    return first.is_dir() and second.is_dir() and first.resolve() == second.resolve()


def model_version_register(
    *,
    project: Project,
    kind: str,
    folder: Path,
    base: str,
    actor: User | None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register an existing model folder (a base model, or one trained elsewhere) as evaluated."""
    version = model_version_create(project=project, kind=kind, base=base, snapshot=None)
    version.artifact_path = str(folder)
    version.artifact_sha256 = folder_digest(folder)
    version.metrics = metrics or {}
    version.status = VersionStatus.EVALUATED
    version.finished_at = timezone.now()
    version.save()
    audit_record(actor=actor, action="model.register", target=version, after={"folder": str(folder)})
    return version


def version_claim(*, version_id: int) -> bool:
    """Move a queued version to training; False if another worker already has it."""
    return (
        ModelVersion.objects.filter(pk=version_id, status=VersionStatus.QUEUED).update(
            status=VersionStatus.TRAINING, started_at=timezone.now(), error=""
        )
        == 1
    )


def version_progress(*, version_id: int, progress: dict[str, Any]) -> None:
    ModelVersion.objects.filter(pk=version_id, status=VersionStatus.TRAINING).update(progress=progress)


def version_fail(*, version_id: int, error: str) -> None:
    """Record a failed run. The deployed model is never touched by a failure."""
    ModelVersion.objects.filter(pk=version_id).exclude(status=VersionStatus.PROMOTED).update(
        status=VersionStatus.FAILED, error=error[-10_000:], finished_at=timezone.now()
    )


def version_output_dir(version: ModelVersion) -> Path:
    return Path(settings.MODEL_STORE) / str(version.project_id) / version.kind / f"v{version.number}"


def json_safe(value: Any) -> Any:
    """Metrics go into JSON columns, and PostgreSQL's JSON has no NaN or infinity: a diverged
    run's NaN loss is stored as null, which the gate then treats as a failure."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def version_evaluated(*, version_id: int, folder: Path, metrics: dict[str, Any]) -> ModelVersion:
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        if version.status != VersionStatus.TRAINING:
            raise Conflict(f"version {version} is {version.status}, not training")
        version.artifact_path = str(folder)
        version.artifact_sha256 = folder_digest(folder)
        version.metrics = json_safe(metrics)
        version.status = VersionStatus.EVALUATED
        version.finished_at = timezone.now()
        version.save()
    return version


# --- The gate --------------------------------------------------------------------------------


def gate_evaluate(
    *, version: ModelVersion, against_metrics: dict[str, Any] | None, against: ModelVersion | None
) -> GateDecision:
    """Compare a new version with the deployed one on the same held-out data.

    `version.metrics` holds the new model's numbers; `against_metrics` the deployed model's
    numbers measured on the same data (None when nothing is deployed yet).
    """
    cfg = gate_settings(project=version.project)
    metrics = version.metrics
    numbers: dict[str, Any]
    if version.kind == ModelKind.REWARD:
        accuracy = float(metrics.get("accuracy", 0.0))
        baseline = float(metrics.get("length_baseline_accuracy", 0.0))
        if against_metrics is None:
            passed = accuracy > baseline
            rule = "first reward model: accuracy must beat the length-only baseline"
            numbers = {"accuracy": accuracy, "length_baseline_accuracy": baseline}
        elif cfg.reward_rule == RewardGateRule.NOT_WORSE and metrics.get("paired"):
            # On a split of a few dozen pairs a one-point margin is one pair, and a version trained
            # on more data is usually the better one (docs/flywheel.md): so the evidence has to
            # show it worse. Only the pairs the two models order differently say which is better.
            better = int(metrics["paired"]["new_only_right"])
            worse = int(metrics["paired"]["deployed_only_right"])
            p_worse = sign_test_p(worse, better)
            passed = p_worse >= NOT_WORSE_P and accuracy > baseline
            rule = (
                "not worse than deployed (sign test on the pairs they order differently, "
                f"p ≥ {NOT_WORSE_P:g}), and above the length baseline"
            )
            numbers = {
                "accuracy": accuracy,
                "deployed_accuracy": float(against_metrics.get("accuracy", 0.0)),
                "new_only_right": better,
                "deployed_only_right": worse,
                "p_worse": p_worse,
                "length_baseline_accuracy": baseline,
            }
        else:
            deployed = float(against_metrics.get("accuracy", 0.0))
            needed = deployed + cfg.reward_min_gain_points / 100
            passed = accuracy >= needed and accuracy > baseline
            rule = (
                f"accuracy ≥ deployed + {cfg.reward_min_gain_points:g} points, and above the length baseline"
            )
            numbers = {
                "accuracy": accuracy,
                "deployed_accuracy": deployed,
                "needed": needed,
                "length_baseline_accuracy": baseline,
            }
        if "gold_n" in metrics:
            # What the pairs were, and each part's accuracy, so a reader can see what decided it.
            numbers["evaluated_on"] = metrics.get("evaluated_on")
            for part in ("gold", "validation"):
                numbers[f"{part}_n"] = metrics[f"{part}_n"]
                numbers[f"{part}_accuracy"] = metrics[f"{part}_accuracy"]
                if against_metrics is not None and f"{part}_accuracy" in against_metrics:
                    numbers[f"deployed_{part}_accuracy"] = against_metrics[f"{part}_accuracy"]
    else:
        ci_low = metrics.get("win_rate_ci_low")
        if against is None or ci_low is None:
            loss = metrics.get("validation_loss")
            passed = loss is not None and math.isfinite(float(loss))
            rule = "first policy: training must finish with a finite validation loss"
            numbers = {"validation_loss": loss}
        else:
            passed = float(ci_low) > cfg.policy_min_ci_low
            rule = f"win-rate 95% CI lower bound > {cfg.policy_min_ci_low:.0%} against the deployed policy"
            numbers = {
                "win_rate": metrics.get("win_rate"),
                "win_rate_ci_low": ci_low,
                "win_rate_ci_high": metrics.get("win_rate_ci_high"),
                "validation_loss": metrics.get("validation_loss"),
            }
    return GateDecision.objects.create(
        version=version, against=against, passed=passed, rule=rule, numbers=json_safe(numbers)
    )


def _deploy(*, version: ModelVersion, action: str, actor: User | None, reason: str) -> Deployment:
    problem = (
        verify_folder(Path(version.artifact_path), version.artifact_sha256)
        if version.artifact_path
        else ("the version has no artifact")
    )
    if problem:
        # Never deploy a corrupt or missing artifact; record why, keep the current one serving.
        ModelVersion.objects.filter(pk=version.pk).update(error=problem)
        audit_record(actor=actor, action="model.deploy_refused", target=version, reason=problem)
        raise Conflict(f"Not deployed: {problem}. The current model keeps serving.", code="artifact_invalid")
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=version.project_id)
        current = active_deployment(project=version.project_id, kind=version.kind)
        now = timezone.now()
        if current is not None:
            if current.version_id == version.pk:
                raise Conflict(f"{version} is already deployed")
            Deployment.objects.filter(pk=current.pk).update(ended_at=now)
            ModelVersion.objects.filter(pk=current.version_id, status=VersionStatus.PROMOTED).update(
                status=VersionStatus.RETIRED
            )
        deployment = Deployment.objects.create(
            project_id=version.project_id,
            kind=version.kind,
            version=version,
            action=action,
            actor=actor,
            reason=reason,
        )
        ModelVersion.objects.filter(pk=version.pk).update(status=VersionStatus.PROMOTED, error="")
        audit_record(
            actor=actor,
            action=f"model.{action}",
            target=version,
            before={"deployed": current.version_id if current else None},
            after={"deployed": version.pk},
            reason=reason,
        )
    return deployment


def model_promote_if_better(*, version: ModelVersion, against_metrics: dict[str, Any] | None) -> GateDecision:
    """Run the gate and deploy on a pass. The decision is stored either way."""
    if version.status != VersionStatus.EVALUATED:
        raise Conflict(f"{version} is {version.status}; only evaluated versions go through the gate")
    current = active_deployment(project=version.project_id, kind=version.kind)
    decision = gate_evaluate(
        version=version, against_metrics=against_metrics, against=current.version if current else None
    )
    if decision.passed:
        _deploy(version=version, action=Deployment.Action.PROMOTE, actor=None, reason=decision.rule)
    else:
        ModelVersion.objects.filter(pk=version.pk).update(status=VersionStatus.REJECTED)
    return decision


def model_force_promote(*, version: ModelVersion, actor: User, reason: str) -> Deployment:
    if not actor.is_admin_role:
        raise Conflict("Only admins can force a promotion")
    if not reason.strip():
        raise InvalidInput("A forced promotion needs a reason", field="reason")
    if version.status not in (VersionStatus.EVALUATED, VersionStatus.REJECTED, VersionStatus.RETIRED):
        raise Conflict(f"{version} is {version.status}; it cannot be deployed")
    current = active_deployment(project=version.project_id, kind=version.kind)
    GateDecision.objects.create(
        version=version,
        against=current.version if current else None,
        passed=True,
        forced=True,
        rule="forced by an admin",
        numbers={"reason": reason},
        actor=actor,
    )
    return _deploy(version=version, action=Deployment.Action.FORCE, actor=actor, reason=reason)


def model_rollback(
    *, project: Project, kind: str, to_version_id: int, actor: User, reason: str = ""
) -> Deployment:
    """Serve an earlier version again. Only versions that were once deployed qualify."""
    target = ModelVersion.objects.filter(pk=to_version_id, project=project, kind=kind).first()
    if target is None:
        raise NotFound(f"No {kind} version {to_version_id} in this project")
    if not Deployment.objects.filter(version=target).exists():
        raise Conflict(f"{target} was never deployed; roll back only to a version that served before")
    return _deploy(version=target, action=Deployment.Action.ROLLBACK, actor=actor, reason=reason)


def model_base_deploy(*, project: Project, kind: str, folder: Path, base: str) -> Deployment:
    """Serve an untrained base model (the demo's first policy) until a trained one wins."""
    current = active_deployment(project=project, kind=kind)
    if current is not None:
        return current
    version = model_version_register(project=project, kind=kind, folder=folder, base=base, actor=None)
    return _deploy(version=version, action=Deployment.Action.INITIAL, actor=None, reason="base model")


def elapsed(started: datetime | None) -> float | None:
    return (timezone.now() - started).total_seconds() if started else None


def describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)[-6:])
