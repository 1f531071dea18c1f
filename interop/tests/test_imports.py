"""Importing other formats into a project: what is stored, labels, errors, idempotency, streaming."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from feedback.models import (
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Prompt,
    PromptSource,
    Response,
    ResponseSource,
)
from flywheel.models import AuditLog, Role
from interop.models import ExternalAnnotator
from interop.services import interop_import
from interop.tests.test_formats import ARENA, oasst_tree

HH = [
    {
        "chosen": "\n\nHuman: Capital of France?\n\nAssistant: Paris.",
        "rejected": "\n\nHuman: Capital of France?\n\nAssistant: Lyon.",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 4.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 5.",
    },
]


def jsonl(*rows: object) -> list[bytes]:
    return [(row if isinstance(row, str) else json.dumps(row)).encode() + b"\n" for row in rows]


def test_it_imports_hh_pairs_as_labelled_imported_data(project, carol):
    report = interop_import(project=project, format="hh", lines=jsonl(*HH), actor=carol)
    assert report.error_count == 0, report.errors
    assert report.created == {"prompt": 2, "response": 4, "comparison": 2, "judgment": 2}
    assert set(Prompt.objects.filter(project=project).values_list("source", flat=True)) == {
        PromptSource.IMPORTED
    }
    assert set(Response.objects.filter(project=project).values_list("source", flat=True)) == {
        ResponseSource.IMPORTED
    }
    judgments = Judgment.objects.filter(task__project=project)
    assert {j.source for j in judgments} == {JudgmentSource.IMPORT}
    [judge] = {j.annotator for j in judgments}
    assert judge.role == Role.ANNOTATOR and not judge.has_usable_password()
    assert ExternalAnnotator.objects.get(user=judge).key == "hh"
    deep = Prompt.objects.get(project=project, text__startswith="Human: Hi")
    assert deep.text == "Human: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?"
    for judgment in judgments.select_related("task__response_a", "task__response_b"):
        winner = judgment.task.response_a if judgment.choice == "a" else judgment.task.response_b
        assert winner.text in ("Paris.", "4.")
    assert AuditLog.objects.filter(action="interop.import", actor=carol).count() == 1


def test_it_creates_nothing_when_the_same_file_is_imported_again(project):
    first = interop_import(project=project, format="hh", lines=jsonl(*HH), actor=None)
    counts = (
        Prompt.objects.count(),
        Response.objects.count(),
        ComparisonTask.objects.count(),
        Judgment.objects.count(),
    )
    again = interop_import(project=project, format="hh", lines=jsonl(*HH), actor=None)
    assert sum(first.created.values()) == 10
    assert not again.created and not again.updated and again.existing == 2
    assert counts == (
        Prompt.objects.count(),
        Response.objects.count(),
        ComparisonTask.objects.count(),
        Judgment.objects.count(),
    )


def test_it_reports_bad_lines_with_numbers_and_imports_the_rest(project):
    rows = [
        *jsonl(
            HH[0],
            "this is not json",
            {"chosen": "\n\nHuman: x\n\nAssistant: \x00bad", "rejected": "\n\nHuman: x\n\nAssistant: ok"},
            {
                "chosen": "\n\nHuman: Capital of France?\n\nAssistant: Lyon.",
                "rejected": "\n\nHuman: Capital of France?\n\nAssistant: Paris.",
            },
            HH[1],
        ),
        b"\xff\xfe\n",
    ]
    report = interop_import(project=project, format="hh", lines=rows, actor=None)
    reasons = {e["line"]: e["reason"] for e in report.errors}
    assert set(reasons) == {2, 3, 4, 6}
    assert "invalid JSON" in reasons[2]
    assert "control character" in reasons[3]
    assert "already judged this pair differently" in reasons[4]
    assert "UTF-8" in reasons[6]
    assert report.lines == 6 and report.records == 4
    assert ComparisonTask.objects.filter(project=project).count() == 2


def test_it_streams_storing_each_line_before_reading_the_next(project):
    seen: list[int] = []

    def lines() -> Iterator[bytes]:
        for row in HH * 3:
            # Everything before this line is already in the database when it is read.
            seen.append(Judgment.objects.filter(task__project=project).count())
            yield json.dumps(row).encode() + b"\n"

    interop_import(project=project, format="hh", lines=lines(), actor=None)
    assert seen == [0, 1, 2, 2, 2, 2]


def test_it_imports_trl_preferences_and_sft_rows(project):
    prefs = interop_import(
        project=project,
        format="trl-preference",
        lines=jsonl({"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}),
        actor=None,
        source_name="ultrafeedback",
    )
    # The same pair from HH lands on the same rows: content decides the ids, not the format.
    hh = interop_import(project=project, format="hh", lines=jsonl(HH[0]), actor=None)
    assert prefs.created["comparison"] == 1 and hh.created == {"judgment": 1}
    assert set(ExternalAnnotator.objects.values_list("key", flat=True)) == {"ultrafeedback", "hh"}
    sft = interop_import(
        project=project,
        format="trl-sft",
        lines=jsonl(
            {
                "messages": [
                    {"role": "user", "content": "Capital of France?"},
                    {"role": "assistant", "content": "Paris, of course."},
                ]
            }
        ),
        actor=None,
    )
    assert sft.created == {"demonstration": 1}
    answer = Response.objects.get(text="Paris, of course.")
    assert answer.source == ResponseSource.IMPORTED and answer.external_id.startswith("sft:")
    assert answer.prompt.text == "Capital of France?"


def test_it_imports_arena_battles_with_one_annotator_per_judge(project):
    second = ARENA | {"judge": "arena_user_42", "winner": "tie (bothbad)", "tstamp": 1682351600.5}
    report = interop_import(project=project, format="arena", lines=jsonl(ARENA, second), actor=None)
    assert report.error_count == 0, report.errors
    task = ComparisonTask.objects.get(project=project)
    assert (task.response_a.model_name, task.response_b.model_name) == ("chatglm-6b", "koala-13b")
    assert task.response_a.source == ResponseSource.IMPORTED
    judgments = {j.annotator.username: j for j in Judgment.objects.filter(task=task)}
    assert set(judgments) == {"arena-arena_user_973", "arena-arena_user_42"}
    assert judgments["arena-arena_user_973"].choice == "b"
    assert judgments["arena-arena_user_42"].choice == "both_bad"
    assert judgments["arena-arena_user_973"].created_at.timestamp() == pytest.approx(1682351591.1322)
    assert all(
        j.source == JudgmentSource.IMPORT and j.external_id.startswith("arena:j:") for j in judgments.values()
    )
    assert Prompt.objects.get(project=project).external_id == f"arena:q:{ARENA['question_id']}"


def test_it_updates_an_arena_vote_corrected_at_the_source(project):
    interop_import(project=project, format="arena", lines=jsonl(ARENA), actor=None)
    report = interop_import(
        project=project, format="arena", lines=jsonl(ARENA | {"winner": "model_a"}), actor=None
    )
    assert report.updated == {"judgment": 1}
    assert Judgment.objects.get().choice == "a"


def test_it_keeps_a_real_user_apart_from_a_judge_with_the_same_name(project, alice):
    interop_import(project=project, format="arena", lines=jsonl(ARENA | {"judge": "alice"}), actor=None)
    judgment = Judgment.objects.get()
    assert judgment.annotator != alice and judgment.annotator.username == "arena-alice"


def test_it_turns_oasst_rankings_into_every_pairwise_comparison_with_context(project):
    report = interop_import(project=project, format="oasst", lines=jsonl(oasst_tree()), actor=None)
    assert report.error_count == 0, report.errors
    # Three ranked replies at the root and three under p2: three pairs each.
    assert report.created["comparison"] == 6 and report.created["judgment"] == 6
    deep = Prompt.objects.get(project=project, external_id="oasst:p2")
    assert deep.text.startswith("Human: Tell me a joke.\n\nAssistant: A pun walks into a bar.")
    wins: dict[str, int] = {}
    for judgment in Judgment.objects.filter(task__prompt=deep).select_related(
        "task__response_a", "task__response_b"
    ):
        winner = judgment.task.response_a if judgment.choice == "a" else judgment.task.response_b
        wins[winner.external_id] = wins.get(winner.external_id, 0) + 1
    assert wins == {"oasst:b0": 2, "oasst:b2": 1}
    assert not Response.objects.filter(external_id="oasst:ax").exists()


def test_it_answers_an_unknown_format_with_not_found(project):
    from flywheel.errors import NotFound

    with pytest.raises(NotFound):
        interop_import(project=project, format="csv", lines=[], actor=None)
