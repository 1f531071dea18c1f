"""Training and loading the learned quality classifier (services around curation.classifier)."""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from curation.models import CurationDecision, QualityModel, Status
from curation.services import curation_settings
from feedback.models import Project

logger = logging.getLogger(__name__)


def _labelled(project_id: int) -> list[CurationDecision]:
    return list(
        CurationDecision.objects.filter(
            project_id=project_id, override_status__in=[Status.KEPT, Status.REJECTED]
        ).select_related("prompt", "response")
    )


def classifier_status(*, project: Project) -> str:
    cfg = curation_settings(project=project)
    labels = CurationDecision.objects.filter(
        project=project, override_status__in=[Status.KEPT, Status.REJECTED]
    ).count()
    active = QualityModel.objects.filter(project=project, is_active=True).first()
    if active is not None:
        auc = "n/a" if active.roc_auc is None else f"{active.roc_auc:.3f}"
        return f"active: trained on {active.labels} labels, held-out ROC-AUC {auc}"
    return f"off: {labels} of {cfg.classifier_min_labels} curator labels needed before it is trained"


def quality_model_train_if_ready(*, project_id: int, force: bool = False) -> QualityModel | None:
    """Train a new classifier once there are enough curator labels (and enough new ones
    since the last model: a quarter more), then make it the active one."""
    from curation import classifier, embeddings

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    cfg = curation_settings(project=project)
    labelled = _labelled(project_id)
    last = QualityModel.objects.filter(project=project).order_by("-created_at").first()
    enough = len(labelled) >= cfg.classifier_min_labels
    grown = last is None or len(labelled) >= last.labels * 1.25
    if not force and not (enough and grown):
        logger.info("quality classifier for project %s: %d labels, not training", project_id, len(labelled))
        return None
    missing = [d for d in labelled if d.embedding is None]
    if missing:
        vectors = embeddings.embed([d.item.text for d in missing])
        for decision, vector in zip(missing, vectors, strict=True):
            decision.embedding = embeddings.to_bytes(vector)
        CurationDecision.objects.bulk_update(missing, ["embedding"])
    x = np.stack([embeddings.from_bytes(bytes(d.embedding)) for d in labelled])  # type: ignore[arg-type]
    y = np.array([1 if d.override_status == Status.KEPT else 0 for d in labelled])
    model, report = classifier.train_quality_classifier(x, y)
    folder = Path(settings.MODEL_STORE) / "quality" / str(project_id)
    folder.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(model)
    digest = hashlib.sha256(payload).hexdigest()
    path = folder / f"{digest[:16]}.pkl"
    path.write_bytes(payload)
    with transaction.atomic():
        QualityModel.objects.filter(project=project, is_active=True).update(is_active=False)
        row = QualityModel.objects.create(
            project=project,
            labels=report.labels,
            roc_auc=report.roc_auc,
            brier=report.brier,
            ece=report.ece,
            artifact_path=str(path),
            artifact_sha256=digest,
            is_active=True,
        )
    return row


def load_quality_model(row: QualityModel) -> object | None:
    """Load a classifier we wrote ourselves, after checking its checksum: a pickle is code,
    so a file that changed on disk is never unpickled."""
    path = Path(row.artifact_path)
    try:
        payload = path.read_bytes()
    except OSError:
        logger.error("quality model %s is missing at %s; curating without it", row.pk, path)
        return None
    if hashlib.sha256(payload).hexdigest() != row.artifact_sha256:
        logger.error("quality model %s failed its checksum; curating without it", row.pk)
        return None
    return pickle.loads(payload)  # noqa: S301 - our own artifact, checksum-verified above
