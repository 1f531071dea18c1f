"""Reads over the registry, including lineage both ways."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, QuerySet, Value, When

from curation.models import SnapshotItem
from feedback.models import Judgment, Response, ResponseSource
from training.models import Deployment, ModelVersion


def versions_for(*, project_id: int, kind: str | None = None) -> QuerySet[ModelVersion]:
    qs = (
        ModelVersion.objects.filter(project_id=project_id)
        .select_related("snapshot", "parent")
        .prefetch_related("gate_decisions")
    )
    return qs.filter(kind=kind) if kind else qs


def deployment_history(*, project_id: int, kind: str | None = None) -> QuerySet[Deployment]:
    qs = Deployment.objects.filter(project_id=project_id).select_related("version", "actor")
    return qs.filter(kind=kind) if kind else qs


def version_lineage(*, version: ModelVersion) -> dict[str, Any]:
    """From a model to the exact data it learned from: its own snapshot's, and under warm start
    its ancestors' too (the weights it continued from learned from them)."""
    from training.services import version_ancestors

    ancestors = version_ancestors(version)
    snapshot_ids = sorted({v.snapshot_id for v in [version, *ancestors] if v.snapshot_id is not None})
    items = SnapshotItem.objects.filter(snapshot_id__in=snapshot_ids)
    judgments = sorted(
        Judgment.objects.filter(snapshot_items__snapshot_id__in=snapshot_ids)
        .values_list("id", flat=True)
        .distinct()
    )
    demonstrations = sorted(
        Response.objects.filter(
            id__in=items.exclude(response=None).values("response_id"), source=ResponseSource.DEMONSTRATION
        ).values_list("id", flat=True)
    )
    tasks = sorted(set(items.exclude(task=None).values_list("task_id", flat=True)))
    return {
        "version": version.pk,
        "snapshot": version.snapshot_id,
        "snapshot_content_hash": version.snapshot.content_hash if version.snapshot else None,
        "parent": version.parent_id,
        "ancestors": [v.pk for v in ancestors],
        "snapshots": snapshot_ids,
        "judgments": judgments,
        "demonstrations": demonstrations,
        "tasks": tasks,
    }


def _with_descendants(direct: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    """The versions, and every version that continued from one of them, at any depth. Each is
    annotated with `through`: "snapshot" for the given ones (their training data held the item),
    "weights" for the descendants (they continued from a model that learned it)."""
    held = set(direct.values_list("id", flat=True))
    found, frontier = set(held), set(held)
    while frontier:
        frontier = (
            set(ModelVersion.objects.filter(parent_id__in=frontier).values_list("id", flat=True)) - found
        )
        found |= frontier
    through = Case(When(id__in=held, then=Value("snapshot")), default=Value("weights"))
    return ModelVersion.objects.filter(id__in=found).annotate(through=through).order_by("id")


def models_trained_on_judgment(*, judgment: Judgment) -> QuerySet[ModelVersion]:
    """From one human judgment to every model version that learned from it: those whose training
    data held it, and those that continued from their weights."""
    return _with_descendants(ModelVersion.objects.filter(snapshot__items__judgments=judgment))


def models_trained_on_response(*, response: Response) -> QuerySet[ModelVersion]:
    return _with_descendants(ModelVersion.objects.filter(snapshot__items__response=response))
