"""Dataset snapshots: frozen, verifiable sets of kept data, with TRL-ready exports.

A snapshot's split is decided per near-duplicate cluster of prompts, keyed by the content
hash of the cluster's representative: a prompt and all its near duplicates land in the
same split, and the same prompt lands in the same split in every snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from curation import pii
from curation.models import CurationDecision, CurationSettings, ItemKind, Snapshot, SnapshotItem, Status
from curation.services import PIPELINE_VERSION, curation_settings
from feedback.models import Choice, ComparisonTask, Judgment, Project, Response, ResponseSource
from feedback.selectors import aggregated_preferences
from feedback.validation import clean_optional_text
from flywheel.errors import Conflict
from flywheel.models import User
from flywheel.services import audit_record

# Agreement a preferred human response needs before it is also used as a demonstration.
PREFERRED_AS_SFT_MIN_AGREEMENT = 0.75

EXPORT_FILES = (
    "sft_train.jsonl",
    "sft_validation.jsonl",
    "preferences_train.jsonl",
    "preferences_validation.jsonl",
    "preferences_gold.jsonl",
)


MAX_NOTE_CHARS = 2_000


def split_for(group_hash: str, validation_percent: int) -> str:
    bucket = int(hashlib.sha256(group_hash.encode()).hexdigest()[:8], 16) % 100
    return SnapshotItem.Split.VALIDATION if bucket < validation_percent else SnapshotItem.Split.TRAIN


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _kept(project: Project) -> tuple[dict[int, CurationDecision], dict[int, CurationDecision]]:
    decisions = CurationDecision.objects.filter(project=project, status=Status.KEPT).select_related(
        "cluster_representative"
    )
    prompts = {d.prompt_id: d for d in decisions if d.kind == ItemKind.PROMPT and d.prompt_id}
    responses = {d.response_id: d for d in decisions if d.kind == ItemKind.RESPONSE and d.response_id}
    return prompts, responses


def _group_hash(decision: CurationDecision) -> str:
    representative = decision.cluster_representative or decision
    return representative.exact_hash or decision.exact_hash


def validation_prompt_ids(*, project: Project) -> set[int]:
    """The kept prompts whose data the next snapshot holds out for validation (by the same rule
    as `snapshot_create`: a prompt's near-duplicate cluster decides, so it is stable from one
    snapshot to the next). Pair selection uses it to draw those prompts' pairs independently of
    the selection policy."""
    percent = curation_settings(project=project).validation_percent
    decisions = CurationDecision.objects.filter(
        project=project, kind=ItemKind.PROMPT, status=Status.KEPT, prompt__isnull=False
    ).select_related("cluster_representative")
    return {
        decision.prompt_id
        for decision in decisions
        if decision.prompt_id and split_for(_group_hash(decision), percent) == SnapshotItem.Split.VALIDATION
    }


def _settings_dict(cfg: CurationSettings) -> dict[str, Any]:
    return {
        "pipeline_version": PIPELINE_VERSION,
        "rule_overrides": cfg.rule_overrides,
        "near_dup_threshold": cfg.near_dup_threshold,
        "representative_policy": cfg.representative_policy,
        "preference_min_agreement": cfg.preference_min_agreement,
        "validation_percent": cfg.validation_percent,
    }


def snapshot_create(*, project: Project, actor: User | None, note: str = "") -> Snapshot:
    """Freeze the project's kept data now, write the exports, and record the manifest."""
    note = clean_optional_text(note, field="note", max_chars=MAX_NOTE_CHARS)
    if CurationDecision.objects.filter(project=project, status=Status.PENDING).exists():
        raise Conflict("Some items are still being curated; try again when the pipeline has caught up")
    cfg = curation_settings(project=project)
    kept_prompts, kept_responses = _kept(project)

    sft: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    sft_prompts: set[int] = set()
    items: list[tuple[str, int, int | None, int | None, list[int]]] = []
    demos = (
        Response.objects.filter(project=project, source=ResponseSource.DEMONSTRATION, id__in=kept_responses)
        .select_related("prompt")
        .order_by("id")
    )
    for response in demos:
        prompt_decision = kept_prompts.get(response.prompt_id)
        if prompt_decision is None:
            continue
        split = split_for(_group_hash(prompt_decision), cfg.validation_percent)
        sft[split].append(
            {
                "messages": [
                    {"role": "user", "content": pii.redact(response.prompt.text)},
                    {"role": "assistant", "content": pii.redact(response.text)},
                ],
                "id": f"response-{response.pk}",
                "origin": "human",
            }
        )
        items.append((split, response.prompt_id, response.pk, None, []))
        sft_prompts.add(response.prompt_id)

    prefs: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    judgment_ids: dict[int, list[int]] = {}
    excluded = set(User.objects.filter(judgments_excluded=True).values_list("id", flat=True))
    for judgment in Judgment.objects.filter(task__project=project, task__is_gold=False).values_list(
        "task_id", "id", "annotator_id"
    ):
        if judgment[2] not in excluded:
            judgment_ids.setdefault(judgment[0], []).append(judgment[1])
    for preference in aggregated_preferences(project=project):
        task, aggregate = preference.task, preference.aggregate
        prompt_decision = kept_prompts.get(task.prompt_id)
        if (
            prompt_decision is None
            or task.response_a_id not in kept_responses
            or task.response_b_id not in kept_responses
        ):
            continue
        if aggregate.winner not in ("a", "b") or aggregate.agreement < cfg.preference_min_agreement:
            continue
        chosen, rejected = (
            (task.response_a, task.response_b)
            if aggregate.winner == "a"
            else (task.response_b, task.response_a)
        )
        split = split_for(_group_hash(prompt_decision), cfg.validation_percent)
        prefs[split].append(
            {
                "prompt": pii.redact(task.prompt.text),
                "chosen": pii.redact(chosen.text),
                "rejected": pii.redact(rejected.text),
                "margin": round(aggregate.margin, 4),
                "agreement": round(aggregate.agreement, 4),
                "votes": aggregate.votes,
                "id": f"task-{task.pk}",
                # Written only where it is not 1, so snapshots without weighted pairs keep their bytes.
                **({"weight": round(task.training_weight, 6)} if task.training_weight != 1.0 else {}),
            }
        )
        items.append((split, task.prompt_id, None, task.pk, judgment_ids.get(task.pk, [])))
        # A human-written response that people preferred is a demonstration too: SFT learns from
        # it, labelled as such. Model-written winners are not, so model output never passes as
        # human data.
        if (
            chosen.source != ResponseSource.MODEL
            and task.prompt_id not in sft_prompts
            and aggregate.agreement >= PREFERRED_AS_SFT_MIN_AGREEMENT
        ):
            sft_prompts.add(task.prompt_id)
            sft[split].append(
                {
                    "messages": [
                        {"role": "user", "content": pii.redact(task.prompt.text)},
                        {"role": "assistant", "content": pii.redact(chosen.text)},
                    ],
                    "id": f"response-{chosen.pk}",
                    "origin": "human-preferred",
                }
            )
            items.append((split, task.prompt_id, chosen.pk, None, []))

    train_prompts = {i[1] for i in items if i[0] == SnapshotItem.Split.TRAIN}
    gold = _gold_preferences(
        project, train_groups={_group_hash(kept_prompts[pid]) for pid in train_prompts if pid in kept_prompts}
    )

    with transaction.atomic():
        # Lock the project's snapshot numbering so two curators creating at once get v1 and v2.
        Project.objects.select_for_update().get(pk=project.pk)
        version = (Snapshot.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
        directory = Path(settings.EXPORT_DIR) / "snapshots" / str(project.pk) / f"v{version}"
        directory.mkdir(parents=True, exist_ok=True)
        counts = {
            "sft_train": _write_jsonl(directory / "sft_train.jsonl", sft["train"]),
            "sft_validation": _write_jsonl(directory / "sft_validation.jsonl", sft["validation"]),
            "preferences_train": _write_jsonl(directory / "preferences_train.jsonl", prefs["train"]),
            "preferences_validation": _write_jsonl(
                directory / "preferences_validation.jsonl", prefs["validation"]
            ),
            "preferences_gold": _write_jsonl(directory / "preferences_gold.jsonl", gold),
        }
        manifest = {
            "project": project.pk,
            "version": version,
            "settings": _settings_dict(cfg),
            "prompts": sorted(
                [pid, kept_prompts[pid].exact_hash] for pid in {i[1] for i in items} if pid in kept_prompts
            ),
            "responses": sorted([rid, kept_responses[rid].exact_hash] for rid in kept_responses),
            "tasks": sorted(i[3] for i in items if i[3] is not None),
            "judgments": sorted(j for i in items for j in i[4]),
            # Held out for the reward gate, never trained on (see _gold_preferences).
            "gold_tasks": sorted(int(row["id"].removeprefix("task-")) for row in gold),
            "files": {name: _sha256_file(directory / name) for name in EXPORT_FILES},
            "counts": counts,
        }
        (directory / "manifest.json").write_bytes(_canonical(manifest))
        snapshot = Snapshot.objects.create(
            project=project,
            version=version,
            created_by=actor,
            note=note,
            manifest=manifest,
            content_hash=hashlib.sha256(_canonical(manifest)).hexdigest(),
            directory=str(directory),
            counts=counts,
        )
        rows = []
        for split, prompt_id, response_id, task_id, _ in items:
            rows.append(
                SnapshotItem(
                    snapshot=snapshot,
                    split=split,
                    prompt_id=prompt_id,
                    response_id=response_id,
                    task_id=task_id,
                )
            )
        SnapshotItem.objects.bulk_create(rows, batch_size=1000)
        through = SnapshotItem.judgments.through
        links = [
            through(snapshotitem_id=row.pk, judgment_id=jid)
            for row, item in zip(rows, items, strict=True)
            for jid in item[4]
        ]
        through.objects.bulk_create(links, batch_size=1000)
        audit_record(
            actor=actor, action="snapshot.create", target=snapshot, after={"version": version, **counts}
        )
    for name in (*EXPORT_FILES, "manifest.json"):
        os.chmod(directory / name, 0o444)
    return snapshot


def _gold_preferences(project: Project, *, train_groups: set[str]) -> list[dict[str, Any]]:
    """The project's gold comparisons as preference pairs, for the reward gate to judge on beside
    the validation split. Their answers are known rather than voted, and no snapshot trains on a
    gold task (its judgments test the annotators). A gold pair whose prompt, or a near duplicate
    of it, the training split holds is left out, as a validation prompt's cluster would be.
    Curation does not filter them otherwise: an admin wrote the answer, and the pair is only ever
    scored."""
    rows = []
    tasks = list(
        ComparisonTask.objects.filter(project=project, is_gold=True, gold_answer__in=(Choice.A, Choice.B))
        .select_related("prompt", "response_a", "response_b")
        .order_by("id")
    )
    decisions = {
        d.prompt_id: d
        for d in CurationDecision.objects.filter(
            project=project, kind=ItemKind.PROMPT, prompt_id__in={t.prompt_id for t in tasks}
        ).select_related("cluster_representative")
    }
    for task in tasks:
        decision = decisions.get(task.prompt_id)
        if decision is not None and _group_hash(decision) in train_groups:
            continue
        chosen, rejected = (
            (task.response_a, task.response_b)
            if task.gold_answer == Choice.A
            else (task.response_b, task.response_a)
        )
        rows.append(
            {
                "prompt": pii.redact(task.prompt.text),
                "chosen": pii.redact(chosen.text),
                "rejected": pii.redact(rejected.text),
                "agreement": 1.0,
                "id": f"task-{task.pk}",
                "gold": True,
            }
        )
    return rows


def snapshot_verify(*, snapshot: Snapshot) -> list[str]:
    """Recompute every hash. Returns the problems found; an empty list means intact."""
    problems = []
    if hashlib.sha256(_canonical(snapshot.manifest)).hexdigest() != snapshot.content_hash:
        problems.append("the stored manifest does not match the content hash")
    directory = Path(snapshot.directory)
    for name, expected in snapshot.manifest.get("files", {}).items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif _sha256_file(path) != expected:
            problems.append(f"{name} changed since the snapshot was taken")
    manifest_file = directory / "manifest.json"
    if not manifest_file.exists() or manifest_file.read_bytes() != _canonical(snapshot.manifest):
        problems.append("manifest.json on disk differs from the recorded manifest")
    return problems


def snapshot_split_of_prompts(*, snapshot: Snapshot) -> dict[int, set[str]]:
    splits: dict[int, set[str]] = {}
    for prompt_id, split in SnapshotItem.objects.filter(snapshot=snapshot).values_list("prompt_id", "split"):
        splits.setdefault(prompt_id, set()).add(split)
    return splits


def tasks_in(snapshot: Snapshot) -> list[ComparisonTask]:
    return list(ComparisonTask.objects.filter(id__in=snapshot.manifest.get("tasks", [])))
