"""manage.py interop: import, export (JSON Lines, dataset folder, Parquet), Label Studio links."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from feedback.models import Judgment
from feedback.tests.factories import make_project
from interop.models import LabelStudioLink
from interop.tests.test_imports import HH
from interop.tests.test_round_trips import native_project


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("interop", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_a_file_and_reports_bad_lines(project, tmp_path: Path):
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(HH[0]) + "\n{oops\n" + json.dumps(HH[1]) + "\n")
    out, err = run("import", "--format", "hh", "--project", str(project.pk), str(path))
    assert "3 lines, 2 records" in out and "1 errors" in out
    assert "line 2: invalid JSON" in err
    assert Judgment.objects.filter(task__project=project).count() == 2


def test_it_exports_json_lines_a_dataset_folder_and_parquet(db, tmp_path: Path):
    import datasets

    project = native_project()
    jsonl = tmp_path / "prefs.jsonl"
    out, _ = run("export", "--format", "trl-preference", "--project", str(project.pk), str(jsonl))
    assert out.startswith("4 rows of trl-preference")
    assert len(jsonl.read_text().splitlines()) == 4
    folder = tmp_path / "sft"
    run(
        "export",
        "--format",
        "trl-sft",
        "--style",
        "prompt-completion",
        "--project",
        str(project.pk),
        "--to",
        "hf-disk",
        str(folder),
    )
    assert datasets.load_from_disk(str(folder)).column_names == ["prompt", "completion"]
    parquet = tmp_path / "battles.parquet"
    run("export", "--format", "arena", "--project", str(project.pk), "--to", "parquet", str(parquet))
    fresh = make_project(name="Fresh")
    out, _ = run("import", "--format", "arena", "--project", str(fresh.pk), "--from", "parquet", str(parquet))
    assert "8 records" in out and "0 errors" in out


def test_it_explains_what_is_wrong(project, tmp_path: Path):
    with pytest.raises(CommandError, match="No project with id 999"):
        run("export", "--format", "hh", "--project", "999", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="No such file"):
        run("import", "--format", "hh", "--project", str(project.pk), str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="styles messages, prompt-completion"):
        run(
            "export",
            "--format",
            "trl-sft",
            "--style",
            "chat",
            "--project",
            str(project.pk),
            str(tmp_path / "x"),
        )
    with pytest.raises(CommandError, match="no enabled Label Studio link"):
        run("label-studio", "sync", "--project", str(project.pk))


def test_it_links_a_project_to_label_studio(project):
    out, _ = run(
        "label-studio", "link", "--project", str(project.pk), "--url", "http://ls.test", "--token", "abc"
    )
    assert out.startswith("Created link")
    out, _ = run(
        "label-studio",
        "link",
        "--project",
        str(project.pk),
        "--url",
        "http://ls.test",
        "--token",
        "abc",
        "--disable",
    )
    assert out.startswith("Updated link") and not LabelStudioLink.objects.get().enabled
    out, _ = run("label-studio", "status", "--project", str(project.pk))
    assert '"url": "http://ls.test"' in out and "abc" not in out
