"""Hugging Face exports: save_to_disk folders and Parquet files, and importing them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedback.tests.factories import make_project
from interop.formats.hf import read_rows, write_dataset
from interop.selectors import export_lines, export_schema
from interop.services import interop_import
from interop.tests.test_round_trips import CASES, native_project


@pytest.mark.parametrize(("fmt", "style"), CASES, ids=[f"{f}-{s}" for f, s in CASES])
def test_it_writes_every_export_as_a_dataset_folder_and_as_parquet(
    db, tmp_path: Path, fmt: str, style: str | None
):
    import datasets

    project = native_project()
    rows = [json.loads(line) for line in export_lines(project=project, format=fmt, style=style, typed=True)]
    schema = export_schema(format=fmt, style=style)
    folder, parquet = tmp_path / "ds", tmp_path / "ds.parquet"
    assert write_dataset(
        export_lines(project=project, format=fmt, style=style, typed=True),
        folder,
        to="hf-disk",
        schema=schema,
    ) == len(rows)
    write_dataset(
        export_lines(project=project, format=fmt, style=style, typed=True),
        parquet,
        to="parquet",
        schema=schema,
    )
    from_disk = datasets.load_from_disk(str(folder))
    from_parquet = datasets.Dataset.from_parquet(str(parquet))
    assert from_disk.num_rows == from_parquet.num_rows == len(rows)
    if schema is not None:
        assert list(from_disk.to_list()) == rows
        assert list(from_parquet.to_list()) == rows


@pytest.mark.parametrize("source", ["parquet", "hf-disk"])
def test_it_imports_a_dataset_it_exported(db, tmp_path: Path, source: str):
    project = native_project()
    path = tmp_path / ("prefs.parquet" if source == "parquet" else "prefs")
    write_dataset(
        export_lines(project=project, format="arena", typed=True),
        path,
        to=source,
        schema=export_schema(format="arena"),
    )
    fresh = make_project(name="Fresh")
    report = interop_import(project=fresh, format="arena", lines=read_rows(path, source=source), actor=None)
    assert report.error_count == 0, report.errors
    assert "".join(export_lines(project=fresh, format="arena")) == "".join(
        export_lines(project=project, format="arena")
    )


def test_it_writes_an_empty_export(db, tmp_path: Path):
    project = make_project(name="Empty")
    path = tmp_path / "empty.parquet"
    assert (
        write_dataset(
            export_lines(project=project, format="hh"), path, to="parquet", schema=export_schema(format="hh")
        )
        == 0
    )
    assert list(read_rows(path, source="parquet")) == []
