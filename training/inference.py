"""The inference worker's model slots: the deployed policy and reward model of each project,
swapped in place when a promotion or rollback changes the deployment.

A watcher thread polls the deployment table every POLL_SECONDS. When it changes, the new
model is checksum-verified and loaded *beside* the old one, then the slot's reference is
switched in one assignment. A request that already holds the old model finishes on it; the
next request gets the new one. A model that fails to load is never switched to: the old one
keeps serving and the error is written on the version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.artifacts import verify_folder

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
# How long a replaced model stays usable for requests that already hold it before it is retired
# (an external adapter unloaded); longer than any one generate call.
RETIRE_AFTER_SECONDS = 600.0
# The committee selection policy's members: the deployed reward model and the newest other
# finished versions of it, promoted or rejected (workers.selection.committee_doubt).
COMMITTEE_SIZE = 3


@dataclass(frozen=True)
class Loaded:
    version_id: int
    model: Any


def _load_policy(folder: Path) -> Any:
    from django.conf import settings

    if settings.FLYWHEEL_POLICY_SERVING == "external":
        from training.external import ExternalPolicyModel

        # Loading means making the vLLM server serve this folder and health-checking it there;
        # it raises when that fails, so the slot below never switches to a dead model.
        return ExternalPolicyModel.attach(base_url=settings.FLYWHEEL_VLLM_URL, folder=folder)
    from training.serving import PolicyModel

    return PolicyModel.load(folder)


def _load_reward(folder: Path) -> Any:
    from training.serving import RewardModel

    return RewardModel.load(folder)


LOADERS: dict[str, Callable[[Path], Any]] = {"policy": _load_policy, "reward": _load_reward}


def _load_verified(version: Any, kind: str) -> Any:
    """A model version's artifact, loaded once its checksum holds (ValueError when it does not)."""
    folder = Path(version.artifact_path)
    problem = verify_folder(folder, version.artifact_sha256)
    if problem:
        raise ValueError(problem)
    return LOADERS[kind](folder)


class NoModelDeployed(Exception):
    pass


class ModelSlots:
    def __init__(self) -> None:
        self._slots: dict[tuple[int, str], Loaded] = {}
        self._load_lock = threading.Lock()
        # Committee members other than the deployed model, per project: version id -> model.
        self._members: dict[int, dict[int, Any]] = {}
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    def get(self, project_id: int, kind: str) -> Loaded:
        """The model to serve this request with. Loads on first use; swaps come from the watcher."""
        self._ensure_watcher()
        slot = self._slots.get((project_id, kind))
        if slot is None:
            self.refresh(project_id, kind)
            slot = self._slots.get((project_id, kind))
        if slot is None:
            raise NoModelDeployed(f"no {kind} model is deployed for project {project_id}")
        return slot

    def refresh(self, project_id: int, kind: str) -> None:
        from training.models import ModelVersion
        from training.services import active_deployment

        deployment = active_deployment(project=project_id, kind=kind)
        if deployment is None:
            return
        current = self._slots.get((project_id, kind))
        if current is not None and current.version_id == deployment.version_id:
            return
        with self._load_lock:
            current = self._slots.get((project_id, kind))
            if current is not None and current.version_id == deployment.version_id:
                return
            version = deployment.version
            try:
                model = _load_verified(version, kind)
            except Exception as exc:  # a bad model must never take the serving one down
                message = f"inference worker could not load {version}: {exc}"
                logger.error(message)
                ModelVersion.objects.filter(pk=version.pk).update(error=message[:10_000])
                return
            self._slots[(project_id, kind)] = Loaded(version.pk, model)
            logger.info("now serving %s for project %s", version, project_id)
            if current is not None and hasattr(current.model, "retire"):
                retire = threading.Timer(RETIRE_AFTER_SECONDS, self._retire, args=(current.model,))
                retire.daemon = True
                retire.start()

    def committee(self, project_id: int, size: int = COMMITTEE_SIZE) -> list[Loaded]:
        """The deployed reward model, then up to `size - 1` of the project's newest other reward
        versions that finished training (promoted before, or turned down by the gate), each
        checksum-verified. A version whose artifact is missing or does not load is left out, so the
        committee may be smaller; it raises NoModelDeployed like `get` when nothing is deployed.
        Members stay loaded while they are among the newest; older ones are dropped."""
        from training.models import ModelKind, ModelVersion, VersionStatus

        deployed = self.get(project_id, "reward")
        members = [deployed]
        versions = (
            ModelVersion.objects.filter(
                project_id=project_id,
                kind=ModelKind.REWARD,
                status__in=(VersionStatus.PROMOTED, VersionStatus.REJECTED, VersionStatus.RETIRED),
            )
            .exclude(artifact_path="")
            .exclude(pk=deployed.version_id)
            .order_by("-number")
        )
        with self._load_lock:
            cache = self._members.get(project_id, {})
            kept: dict[int, Any] = {}
            for version in versions:
                if len(members) >= size:
                    break
                model = cache.get(version.pk)
                if model is None:
                    try:
                        model = _load_verified(version, "reward")
                    except Exception as exc:  # a member that cannot load is left out, not fatal
                        logger.warning(
                            "committee member %s left out for project %s: %s", version, project_id, exc
                        )
                        continue
                kept[version.pk] = model
                members.append(Loaded(version.pk, model))
            self._members[project_id] = kept
        return members

    def _retire(self, model: Any) -> None:
        # A rollback may have brought the same version back meanwhile: then it stays.
        name = getattr(model, "model", None)
        if any(
            slot.model is model or getattr(slot.model, "model", None) == name for slot in self._slots.values()
        ):
            return
        model.retire()

    def _ensure_watcher(self) -> None:
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._watcher = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        from django.db import close_old_connections, connection

        try:
            while not self._stop.wait(POLL_SECONDS):
                # This thread's own connection: drop it if the database restarted meanwhile.
                close_old_connections()
                for project_id, kind in list(self._slots):
                    try:
                        self.refresh(project_id, kind)
                    except Exception:
                        logger.exception("model watcher failed for project %s %s", project_id, kind)
        finally:
            connection.close()

    def reset(self) -> None:
        """Stop the watcher and forget every model (tests; a worker never needs this)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=POLL_SECONDS * 3)
        self._watcher = None
        self._stop = threading.Event()
        self._slots.clear()
        self._members.clear()


SLOTS = ModelSlots()


def generate(
    *, project_id: int, prompts: list[str], n: int, temperature: float, max_new_tokens: int
) -> dict[str, Any]:
    loaded = SLOTS.get(project_id, "policy")
    started = time.monotonic()
    outputs = loaded.model.generate(prompts, n=n, temperature=temperature, max_new_tokens=max_new_tokens)
    return {"version": loaded.version_id, "outputs": outputs, "seconds": round(time.monotonic() - started, 3)}


def score(*, project_id: int, prompt: str, responses: list[str], features: bool = False) -> dict[str, Any]:
    """The deployed reward model's scores; with `features`, also the vector each score is a linear
    function of (what active learning measures a pair's information with), in the same pass."""
    loaded = SLOTS.get(project_id, "reward")
    started = time.monotonic()
    result: dict[str, Any] = {"version": loaded.version_id}
    if features:
        scores, vectors = loaded.model.score_with_features(prompt, responses)
        result["features"] = vectors
    else:
        scores = loaded.model.score(prompt, responses)
    result["scores"] = [float(s) for s in scores]
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def committee_scores(
    *,
    project_id: int,
    prompt: str,
    responses: list[str],
    size: int = COMMITTEE_SIZE,
    members: Sequence[Loaded] | None = None,
) -> dict[str, Any]:
    """Every committee member's scores for the responses (`ModelSlots.committee`): `scores[0]` is
    the deployed model's, the rest the newest other versions', each on its own scale. A caller
    scoring many prompts passes the `members` it looked up once, instead of a lookup per prompt."""
    if members is None:
        members = SLOTS.committee(project_id, size)
    started = time.monotonic()
    scores = [[float(s) for s in member.model.score(prompt, responses)] for member in members]
    return {
        "versions": [member.version_id for member in members],
        "scores": scores,
        "seconds": round(time.monotonic() - started, 3),
    }
