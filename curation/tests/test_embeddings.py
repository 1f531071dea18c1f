"""The embedding model's torch threads follow OMP_NUM_THREADS, the knob training reads too."""

from __future__ import annotations

import os

import pytest

from curation import embeddings


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("3", 3), ("1", 1), ("", None), ("0", None), ("many", None)],
)
def test_it_takes_omp_num_threads_and_otherwise_at_most_two(monkeypatch, requested, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", requested)
    fallback = max(1, min(2, os.cpu_count() or 1))
    assert embeddings.threads() == (fallback if expected is None else expected)
