"""Hugging Face datasets on disk: `save_to_disk` folders and Parquet files, both ways.

Every export is first written as JSON Lines, so these only convert: JSON Lines to a dataset,
and a dataset's rows back to JSON Lines for the importers. `datasets` and `pyarrow` are
imported here and only when called.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TARGETS = ("jsonl", "hf-disk", "parquet")

# Column types, written without importing datasets: "string", "int64", "float64", or a
# one-element list for a list of that type.
Schema = dict[str, Any]
MESSAGES: list[Any] = [{"role": "string", "content": "string"}]


def _feature(spec: Any) -> Any:
    from datasets import Value

    if isinstance(spec, str):
        return Value(spec)
    if isinstance(spec, list):
        return [_feature(spec[0])]
    return {name: _feature(inner) for name, inner in spec.items()}


def write_dataset(lines: Iterable[str], path: Path, *, to: str, schema: Schema | None = None) -> int:
    """Write JSON Lines as a dataset folder (to="hf-disk") or a Parquet file (to="parquet").
    Returns the number of rows. Without a schema, column types are inferred from the data."""
    import datasets

    if to not in ("hf-disk", "parquet"):
        raise ValueError(f"unknown target {to!r}")
    datasets.disable_progress_bars()
    features = datasets.Features(_feature(schema)) if schema else None
    with tempfile.TemporaryDirectory(prefix="flywheel-hf-") as tmp:
        rows = Path(tmp) / "rows.jsonl"
        count = 0
        with rows.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                count += 1
        if count:
            cache = str(Path(tmp) / "cache")
            dataset = datasets.Dataset.from_json(str(rows), features=features, cache_dir=cache)
        else:
            dataset = datasets.Dataset.from_dict({name: [] for name in (schema or {})}, features=features)
        if to == "hf-disk":
            dataset.save_to_disk(str(path))
        else:
            dataset.to_parquet(str(path))
        # Release the memory map on the temporary cache before the folder goes.
        del dataset
    return count


def read_rows(path: Path, *, source: str) -> Iterator[str]:
    """The rows of a Parquet file or a save_to_disk folder as JSON Lines, a batch at a time."""
    if source == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=1000):
            for row in batch.to_pylist():
                yield json.dumps(row, ensure_ascii=False)
    elif source == "hf-disk":
        import datasets

        dataset = datasets.load_from_disk(str(path))
        if not isinstance(dataset, datasets.Dataset):
            raise ValueError(f"{path} holds several splits; point at one split's folder")
        for start in range(0, len(dataset), 1000):
            for row in _rows(dataset[start : start + 1000]):
                yield json.dumps(row, ensure_ascii=False)
    else:
        raise ValueError(f"unknown source {source!r}")


def _rows(columns: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    names = list(columns)
    for values in zip(*(columns[name] for name in names), strict=True):
        yield dict(zip(names, values, strict=True))
