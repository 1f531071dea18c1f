"""Reads over the registry, including lineage both ways."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from curation.models import SnapshotItem
from feedback.models import Judgment, Response, ResponseSource
from training.models import Deployment, ModelVersion


def versions_for(*, project_id: int, kind: str | None = None) -> QuerySet[ModelVersion]:
    qs = (
        ModelVersion.objects.filter(project_id=project_id)
        .select_related("snapshot")
        .prefetch_related("gate_decisions")
    )
    return qs.filter(kind=kind) if kind else qs


def deployment_history(*, project_id: int, kind: str | None = None) -> QuerySet[Deployment]:
    qs = Deployment.objects.filter(project_id=project_id).select_related("version", "actor")
    return qs.filter(kind=kind) if kind else qs


def version_lineage(*, version: ModelVersion) -> dict[str, Any]:
    """From a model to the exact data it learned from."""
    if version.snapshot_id is None:
        return {"version": version.pk, "snapshot": None, "judgments": [], "demonstrations": [], "tasks": []}
    items = SnapshotItem.objects.filter(snapshot_id=version.snapshot_id)
    judgments = sorted(
        Judgment.objects.filter(snapshot_items__snapshot_id=version.snapshot_id)
        .values_list("id", flat=True)
        .distinct()
    )
    demonstrations = sorted(
        Response.objects.filter(
            id__in=items.exclude(response=None).values("response_id"), source=ResponseSource.DEMONSTRATION
        ).values_list("id", flat=True)
    )
    tasks = sorted(items.exclude(task=None).values_list("task_id", flat=True))
    return {
        "version": version.pk,
        "snapshot": version.snapshot_id,
        "snapshot_content_hash": version.snapshot.content_hash if version.snapshot else None,
        "judgments": judgments,
        "demonstrations": demonstrations,
        "tasks": tasks,
    }


def models_trained_on_judgment(*, judgment: Judgment) -> QuerySet[ModelVersion]:
    """From one human judgment to every model version whose training data held it."""
    return ModelVersion.objects.filter(snapshot__items__judgments=judgment).distinct().order_by("id")


def models_trained_on_response(*, response: Response) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(snapshot__items__response=response).distinct().order_by("id")
