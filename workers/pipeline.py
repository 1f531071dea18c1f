"""The retraining loop: decide when to run, run the steps, record everything on a PipelineRun.

Steps, in order: snapshot → reward (train, evaluate, gate, deploy) → policy (the same) →
generate (new candidates from the deployed policy) → pairs (new comparison tasks). Each
step is idempotent: a step whose output is already recorded on the run is skipped, so a
redelivered task after a crash resumes where the dead worker stopped.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from curation.models import CurationDecision, ItemKind, Snapshot, Status
from feedback.models import ComparisonTask, Judgment, Project, Response, ResponseSource
from flywheel.errors import Conflict, InvalidInput
from flywheel.models import User
from flywheel.services import audit_record
from workers.models import ACTIVE_RUN_STATUSES, PipelineRun, PipelineSettings, RunStatus, SelectionPolicy
from workers.selection import Candidate, select_tasks

if TYPE_CHECKING:
    from training.models import ModelVersion

logger = logging.getLogger(__name__)

STEPS = ("snapshot", "reward", "policy", "generate", "pairs")
STALE_AFTER = timedelta(hours=6)


def pipeline_settings(*, project: Project) -> PipelineSettings:
    found, _ = PipelineSettings.objects.get_or_create(project=project)
    return found


# What an admin may change over the API (the project is fixed).
SETTINGS_FIELDS = (
    "enabled",
    "min_new_items",
    "max_age_hours",
    "candidates_per_prompt",
    "prompts_per_run",
    "tasks_per_run",
    "selection_policy",
    "best_of_n",
    "reward_base",
    "policy_base",
    "reward_warm_start",
    "policy_warm_start",
    "reward_config",
    "policy_config",
    "generation_max_new_tokens",
)


def settings_known_check(names: Any) -> None:
    """Refuse any name that is not a changeable setting (a serializer would drop it silently)."""
    unknown = sorted(set(names) - set(SETTINGS_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown setting {', '.join(unknown)}", field=unknown[0])


def pipeline_settings_update(
    *, project: Project, actor: User | None, changes: dict[str, Any]
) -> PipelineSettings:
    """Change some of a project's pipeline settings: all are checked before any is saved (the
    model's clean, which the admin form runs too), and the change is audited. The next run
    reads them; a run in progress keeps what it started with where it already made a version."""
    settings_known_check(changes)
    if not changes:
        return pipeline_settings(project=project)
    with transaction.atomic():
        cfg = pipeline_settings(project=project)
        cfg = PipelineSettings.objects.select_for_update().get(pk=cfg.pk)
        before = {name: getattr(cfg, name) for name in changes}
        for name, value in changes.items():
            setattr(cfg, name, value)
        try:
            cfg.full_clean(exclude=["project"])
        except ValidationError as exc:
            # Only what this change sets is refused. A stored value that no longer passes (a base
            # folder since moved away) must not stop an admin changing anything else, such as it.
            refused = {field: msgs for field, msgs in exc.message_dict.items() if field in changes}
            if refused:
                field, messages = next(iter(refused.items()))
                raise InvalidInput(f"{field}: {' '.join(messages)}", field=field) from exc
        cfg.save(update_fields=list(changes))
        after = {name: getattr(cfg, name) for name in changes}
        if before != after:
            audit_record(actor=actor, action="pipeline.settings", target=cfg, before=before, after=after)
    return cfg


# --- When to run -----------------------------------------------------------------------------


def _last_trained_at(project: Project) -> datetime | None:
    last = (
        PipelineRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .exclude(snapshot=None)
        .order_by("-finished_at")
        .select_related("snapshot")
        .first()
    )
    return last.snapshot.created_at if last and last.snapshot else None


def new_items_since(*, project: Project, since: datetime | None) -> int:
    """New human signal since a moment: judgments on real comparisons plus kept demonstrations."""
    judgments = Judgment.objects.filter(task__project=project, task__is_gold=False)
    demos = CurationDecision.objects.filter(
        project=project,
        kind=ItemKind.RESPONSE,
        status=Status.KEPT,
        response__source=ResponseSource.DEMONSTRATION,
    )
    if since is not None:
        judgments = judgments.filter(created_at__gt=since)
        demos = demos.filter(processed_at__gt=since)
    return judgments.count() + demos.count()


def retrain_due(*, project: Project, now: datetime | None = None) -> tuple[bool, str]:
    now = now or timezone.now()
    cfg = pipeline_settings(project=project)
    if not cfg.enabled:
        return False, "the pipeline is turned off for this project"
    if PipelineRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).exists():
        return False, "a run is already in progress"
    since = _last_trained_at(project)
    fresh = new_items_since(project=project, since=since)
    if fresh >= cfg.min_new_items:
        return True, f"{fresh} new judgments and demonstrations (threshold {cfg.min_new_items})"
    if since is not None and fresh > 0 and now - since >= timedelta(hours=cfg.max_age_hours):
        return (
            True,
            f"the last trained snapshot is older than {cfg.max_age_hours} h and {fresh} new items arrived",
        )
    return False, f"{fresh} new items of {cfg.min_new_items} needed"


# --- Runs ------------------------------------------------------------------------------------


def pipeline_run_start(*, project: Project, trigger: str, actor: User | None = None) -> PipelineRun:
    """Create a run and enqueue its steps after commit. A second start while one is active is
    refused by the database constraint, not by a check that could race."""
    try:
        with transaction.atomic():
            run = PipelineRun.objects.create(
                project=project,
                trigger=trigger,
                steps=[{"name": name, "status": "pending"} for name in STEPS],
            )
            audit_record(actor=actor, action="pipeline.start", target=run, after={"trigger": trigger})
            transaction.on_commit(lambda: _enqueue(run.pk))
    except IntegrityError:
        active = PipelineRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).first()
        raise Conflict(
            f"Pipeline run {active.pk if active else '?'} is already in progress for this project",
            code="run_in_progress",
        ) from None
    return run


def _enqueue(run_id: int) -> None:
    from workers.tasks import pipeline_chain

    pipeline_chain(run_id).apply_async()


def pipeline_run_retry(*, run: PipelineRun, actor: User | None) -> PipelineRun:
    if run.status != RunStatus.FAILED:
        raise Conflict("Only a failed run can be retried")
    new = pipeline_run_start(project=run.project, trigger="retry", actor=actor)
    PipelineRun.objects.filter(pk=new.pk).update(retry_of=run)
    return new


def _log(run_id: int, line: str) -> None:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            # Deleted with its project while a step was queued: nothing to write to.
            logger.warning("pipeline run %s no longer exists: %s", run_id, line)
            return
        run.log = (run.log + f"{stamp} {line}\n")[-50_000:]
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["log", "heartbeat_at"])
    logger.info("pipeline run %s: %s", run_id, line)


def _set_step(run_id: int, name: str, **changes: Any) -> PipelineRun:
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run_id)
        steps = [dict(s) for s in run.steps]
        for step in steps:
            if step["name"] == name:
                step.update(changes)
        run.steps = steps
        run.heartbeat_at = timezone.now()
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.RUNNING
            run.started_at = timezone.now()
        run.save(update_fields=["steps", "heartbeat_at", "status", "started_at"])
    return run


def step_begin(*, run_id: int, name: str) -> PipelineRun | None:
    """Mark a step running and return the run; None when the step already finished (a
    redelivery) or the run is over."""
    run = PipelineRun.objects.filter(pk=run_id).first()
    if run is None or run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return None
    step = run.step(name) or {}
    if step.get("status") in ("done", "skipped"):
        return None
    attempts = int(step.get("attempts", 0)) + 1  # type: ignore[call-overload]
    return _set_step(run_id, name, status="running", started_at=timezone.now().isoformat(), attempts=attempts)


def step_end(*, run_id: int, name: str, status: str = "done", note: str = "") -> None:
    run = PipelineRun.objects.get(pk=run_id)
    step = run.step(name) or {}
    started = step.get("started_at")
    seconds = (timezone.now() - datetime.fromisoformat(str(started))).total_seconds() if started else None
    _set_step(run_id, name, status=status, finished_at=timezone.now().isoformat(), seconds=seconds, note=note)
    _log(run_id, f"{name}: {status}{' (' + note + ')' if note else ''}")


def run_fail(*, run_id: int, step: str, error: str) -> None:
    _set_step(run_id, step, status="failed", error=error[-5000:], finished_at=timezone.now().isoformat())
    PipelineRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.FAILED, error=f"{step}: {error}"[-10_000:], finished_at=timezone.now()
    )
    _log(run_id, f"{step}: FAILED: {error.splitlines()[0] if error else ''}")


def run_finish(*, run_id: int) -> None:
    PipelineRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )
    _log(run_id, "run succeeded")


def runs_reap(*, now: datetime | None = None) -> int:
    """Fail runs whose worker vanished (no heartbeat for STALE_AFTER), releasing the lock."""
    now = now or timezone.now()
    stale = PipelineRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).filter(
        Q(heartbeat_at__lt=now - STALE_AFTER) | Q(heartbeat_at=None, created_at__lt=now - STALE_AFTER)
    )
    count = 0
    for run in stale:
        current = next((s["name"] for s in run.steps if s.get("status") == "running"), "pipeline")
        run_fail(
            run_id=run.pk, step=current, error=f"no progress for {STALE_AFTER}; the worker is presumed dead"
        )
        count += 1
    return count


# --- Steps -----------------------------------------------------------------------------------


def step_snapshot(*, run: PipelineRun) -> str:
    from curation.snapshots import snapshot_create

    if run.snapshot_id:
        return f"snapshot {run.snapshot_id} already taken"
    snapshot = snapshot_create(project=run.project, actor=None, note=f"pipeline run {run.pk}")
    PipelineRun.objects.filter(pk=run.pk).update(snapshot=snapshot)
    return f"snapshot v{snapshot.version}: " + ", ".join(f"{v} {k}" for k, v in snapshot.counts.items())


def step_train(*, run: PipelineRun, kind: str) -> tuple[str, str]:
    """Returns (status, note). Skips a kind with no training data in the snapshot."""
    from training import runs
    from training.models import ModelVersion, VersionStatus

    assert run.snapshot is not None
    counts = run.snapshot.counts
    prefix = "preferences" if kind == "reward" else "sft"
    if not counts.get(f"{prefix}_train"):
        return "skipped", f"the snapshot has no {prefix} training data"
    field = f"{kind}_version"
    version = getattr(run, field)
    if version is None:
        version = next_version_create(project=run.project, kind=kind, snapshot=run.snapshot)
        PipelineRun.objects.filter(pk=run.pk).update(**{field: version})
    decision = runs.version_train(version_id=version.pk)
    version = ModelVersion.objects.get(pk=version.pk)
    if version.status == VersionStatus.FAILED:
        raise RuntimeError(f"{version} failed: {version.error.splitlines()[0] if version.error else ''}")
    verdict = "promoted" if decision and decision.passed else "not promoted by the gate"
    return "done", f"{version}: {verdict} ({decision.rule if decision else 'no gate decision'})"


def next_version_create(*, project: Project, kind: str, snapshot: Snapshot) -> ModelVersion:
    """The next version of a kind, as the project's pipeline settings say: from the configured
    base, or under warm start from the deployed version's weights. Warm start is skipped while
    nothing is deployed, and when the deployed model does not descend from the configured base
    (the base was changed: start the new line from it)."""
    from training import runs, services

    cfg = pipeline_settings(project=project)
    base = (cfg.reward_base if kind == "reward" else cfg.policy_base) or runs.default_base(kind)
    config = cfg.reward_config if kind == "reward" else cfg.policy_config
    warm = cfg.reward_warm_start if kind == "reward" else cfg.policy_warm_start
    deployed = services.active_deployment(project=project, kind=kind) if warm else None
    parent = None
    if deployed is not None and services.version_descends_from(deployed.version, base):
        parent = deployed.version
    return services.model_version_create(
        project=project, kind=kind, base=base, snapshot=snapshot, config=dict(config), parent=parent
    )


def step_generate(*, run: PipelineRun) -> str:
    """New candidates for prompts that have too few, from the deployed policy."""
    from training.inference import SLOTS, NoModelDeployed

    cfg = pipeline_settings(project=run.project)
    kept_prompts = CurationDecision.objects.filter(
        project=run.project, kind=ItemKind.PROMPT, status=Status.KEPT
    )
    wanted: list[tuple[int, str, int]] = []
    for decision in kept_prompts.select_related("prompt").order_by("id"):
        prompt = decision.prompt
        assert prompt is not None
        have = prompt.responses.exclude(curation__status=Status.REJECTED).count()
        if have < cfg.candidates_per_prompt:
            wanted.append((prompt.pk, prompt.text, cfg.candidates_per_prompt - have))
        if len(wanted) >= cfg.prompts_per_run:
            break
    if not wanted:
        return "every kept prompt has enough candidates"
    try:
        loaded = SLOTS.get(run.project_id, "policy")
    except NoModelDeployed:
        return "no policy is deployed yet; nothing generated"
    from training.models import ModelVersion

    producer = f"policy-v{ModelVersion.objects.get(pk=loaded.version_id).number}"
    created = 0
    for prompt_id, text, missing in wanted:
        # Varied sampling: each candidate gets its own temperature, so the pair is informative.
        replies = []
        for index in range(missing):
            temperature = 0.6 + 0.4 * index
            replies += loaded.model.generate(
                [text], n=1, temperature=temperature, max_new_tokens=cfg.generation_max_new_tokens
            )[0]
        with transaction.atomic():
            for reply in replies:
                if reply.strip():
                    Response.objects.create(
                        project_id=run.project_id,
                        prompt_id=prompt_id,
                        text=reply,
                        source=ResponseSource.MODEL,
                        model_name=producer,
                    )
                    created += 1
    # Curate the new candidates here rather than on the curation queue: the next step pairs
    # only kept responses, and must not race the curation worker.
    from curation.services import project_curate

    project_curate(project_id=run.project_id, trigger="pipeline")
    return f"{created} candidates from {producer} for {len(wanted)} prompts"


def step_pairs(*, run: PipelineRun, rng: random.Random | None = None) -> str:
    """Queue comparison tasks between kept candidates, chosen by the project's policy."""
    from curation.snapshots import validation_prompt_ids
    from training.inference import SLOTS, NoModelDeployed, committee_scores

    cfg = pipeline_settings(project=run.project)
    rng = rng or random.Random(run.pk)
    try:
        reward = SLOTS.get(run.project_id, "reward")
    except NoModelDeployed:
        reward = None
    existing = {
        frozenset(pair)
        for pair in ComparisonTask.objects.filter(project=run.project).values_list(
            "response_a_id", "response_b_id"
        )
    }
    kept = Response.objects.filter(project=run.project, curation__status=Status.KEPT).select_related("prompt")
    by_prompt: dict[int, list[Response]] = {}
    for response in kept:
        by_prompt.setdefault(response.prompt_id, []).append(response)
    newest = (
        Response.objects.filter(project=run.project, source=ResponseSource.MODEL)
        .order_by("-id")
        .values_list("model_name", flat=True)
        .first()
    )
    # The committee's members are looked up (and loaded) once, not for every prompt.
    committee = (
        SLOTS.committee(run.project_id)
        if reward is not None and cfg.selection_policy == SelectionPolicy.COMMITTEE
        else None
    )
    pools: dict[int, list[Candidate]] = {}
    for prompt_id, responses in by_prompt.items():
        if len(responses) < 2:
            continue
        scores: list[float | None] = [None] * len(responses)
        features: list[tuple[float, ...] | None] = [None] * len(responses)
        members: list[tuple[float, ...] | None] = [None] * len(responses)
        if reward is not None:
            texts = [r.text for r in responses]
            if committee is not None:
                # Every member's scores: the deployed model's first, then recent other versions'.
                served = committee_scores(
                    project_id=run.project_id,
                    prompt=responses[0].prompt.text,
                    responses=texts,
                    members=committee,
                )
                scores = list(served["scores"][0])
                members = [tuple(column) for column in zip(*served["scores"], strict=True)]
            elif cfg.selection_policy == SelectionPolicy.INFORMATION:
                values, vectors = reward.model.score_with_features(responses[0].prompt.text, texts)
                scores, features = list(values), [tuple(v) for v in vectors]
            else:
                scores = list(reward.model.score(responses[0].prompt.text, texts))
        pools[prompt_id] = [
            Candidate(id=r.pk, score=s, producer=r.model_name or r.source, features=f, committee=m)
            for r, s, f, m in zip(responses, scores, features, members, strict=True)
        ]
    if reward is not None and cfg.selection_policy == SelectionPolicy.CONTRAST:
        pools = with_embeddings(pools, {r.pk: r.text for rs in by_prompt.values() for r in rs})
    chosen = select_tasks(
        pools,
        policy=cfg.selection_policy,
        limit=cfg.tasks_per_run,
        existing=existing,
        per_prompt=2,
        newest_producer=newest,
        validation=validation_prompt_ids(project=run.project),
        rng=rng,
    )
    created = 0
    with transaction.atomic():
        for prompt_id, pair in chosen:
            ComparisonTask.objects.create(
                project=run.project,
                prompt_id=prompt_id,
                response_a_id=pair.a,
                response_b_id=pair.b,
                priority=round(pair.priority, 6),
                suggested_preference=pair.p_a,
                training_weight=pair.weight,
            )
            created += 1
    return f"{created} comparison tasks by {cfg.selection_policy} selection"


# Reply embeddings by text, for the contrast policy: a response's text never changes, and each
# round asks about mostly the same candidates as the last. Kept as float32 arrays (1.5 kB each; a
# tuple of Python floats would take eight times that), bounded, oldest out first.
_EMBEDDINGS: dict[str, np.ndarray] = {}
EMBEDDING_CACHE_SIZE = 50_000


def with_embeddings(pools: dict[int, list[Candidate]], texts: dict[int, str]) -> dict[int, list[Candidate]]:
    """The pools with each candidate's sentence embedding (curation's all-MiniLM-L6-v2), by
    response id in `texts`: what the contrast policy measures replies' contents with."""
    from curation.embeddings import embed

    wanted = {texts[c.id] for candidates in pools.values() for c in candidates}
    found = {text: _EMBEDDINGS[text] for text in wanted if text in _EMBEDDINGS}
    missing = sorted(wanted - found.keys())
    for text, vector in zip(missing, embed(missing), strict=True):
        found[text] = _EMBEDDINGS[text] = vector
        if len(_EMBEDDINGS) > EMBEDDING_CACHE_SIZE:
            del _EMBEDDINGS[next(iter(_EMBEDDINGS))]
    return {
        key: [replace(c, embedding=tuple(found[texts[c.id]].tolist())) for c in candidates]
        for key, candidates in pools.items()
    }
