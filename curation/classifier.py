"""The learned quality classifier: logistic regression over sentence embeddings, trained on
curators' keep/reject decisions. Pure functions: no Django, no torch (embeddings come in)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClassifierReport:
    labels: int
    positives: int
    roc_auc: float | None
    brier: float | None
    ece: float | None


def expected_calibration_error(
    probs: npt.NDArray[np.float64], labels: npt.NDArray[np.int_], bins: int = 10
) -> float:
    """ECE with equal-width bins: the gap between confidence and accuracy, weighted by bin size."""
    if len(probs) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(float(probs[mask].mean()) - float(labels[mask].mean()))
    return total


def train_quality_classifier(
    embeddings: FloatArray, keep: npt.NDArray[np.int_], *, seed: int = 0, holdout: float = 0.25
) -> tuple[object, ClassifierReport]:
    """Fit on a stratified split, report held-out ROC-AUC, Brier and ECE, then refit on all
    labels so the deployed model uses every decision curators made."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    keep = np.asarray(keep, dtype=np.int_)
    if len(set(keep.tolist())) < 2:
        raise ValueError("the classifier needs both kept and rejected examples")
    x_train, x_test, y_train, y_test = train_test_split(
        embeddings, keep, test_size=holdout, random_state=seed, stratify=keep
    )
    model = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
    model.fit(x_train, y_train)
    probs = model.predict_proba(x_test)[:, 1]
    auc = float(roc_auc_score(y_test, probs)) if len(set(y_test.tolist())) > 1 else None
    report = ClassifierReport(
        labels=len(keep),
        positives=int(keep.sum()),
        roc_auc=auc,
        brier=float(brier_score_loss(y_test, probs)),
        ece=expected_calibration_error(probs, y_test),
    )
    final = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
    final.fit(embeddings, keep)
    return final, report


def keep_probability(model: object, embeddings: FloatArray) -> npt.NDArray[np.float64]:
    return model.predict_proba(embeddings)[:, 1]  # type: ignore[attr-defined]
