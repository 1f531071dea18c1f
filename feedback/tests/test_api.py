"""The REST API as a programmatic client sees it: import, next-task and submit, exports,
projects and the schema. Every request goes through the real URL, auth and exception handler."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from feedback import services
from feedback.models import (
    Assignment,
    AssignmentState,
    Choice,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Project,
    Prompt,
    Response,
)
from feedback.tests.factories import make_task, make_user
from flywheel.models import Role, User

pytestmark = pytest.mark.django_db

NDJSON = "application/x-ndjson"


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def jsonl(*records: dict[str, Any] | str) -> bytes:
    """Records become JSON lines; strings go in verbatim, to send lines that are not valid JSON."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def read_jsonl(response: Any) -> list[dict[str, Any]]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def import_url(project: Project) -> str:
    return reverse("api-import", kwargs={"project_id": project.pk})


def next_url(project: Project) -> str:
    return reverse("api-next-task", kwargs={"project_id": project.pk})


def submit_url(assignment_id: int) -> str:
    return reverse("api-submit", kwargs={"assignment_id": assignment_id})


def skip_url(assignment_id: int) -> str:
    return reverse("api-skip", kwargs={"assignment_id": assignment_id})


def assert_accounted(report: dict[str, Any]) -> None:
    # Every non-blank line ends up created, existing or reported: nothing is dropped quietly.
    assert report["lines"] == sum(report["created"].values()) + report["existing"] + len(report["errors"])


DATASET = jsonl(
    {"type": "prompt", "external_id": "p1", "text": "What is the capital of France?"},
    {
        "type": "response",
        "external_id": "r1",
        "prompt_external_id": "p1",
        "text": "Paris.",
        "model_name": "m1",
    },
    {"type": "response", "external_id": "r2", "prompt_external_id": "p1", "text": "Lyon, I think."},
    {
        "type": "comparison",
        "external_id": "c1",
        "prompt_external_id": "p1",
        "response_a_external_id": "r1",
        "response_b_external_id": "r2",
        "priority": 2.5,
    },
    {
        "type": "comparison",
        "external_id": "g1",
        "prompt_external_id": "p1",
        "response_a_external_id": "r2",
        "response_b_external_id": "r1",
        "is_gold": True,
        "gold_answer": "b",
    },
)


# --- Import ----------------------------------------------------------------------------------


def test_it_imports_a_multipart_jsonl_file(project, carol):
    upload = SimpleUploadedFile("data.jsonl", DATASET, content_type=NDJSON)
    response = client_for(carol).post(import_url(project), {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report == {
        "lines": 5,
        "created": {"prompt": 1, "response": 2, "comparison": 2},
        "existing": 0,
        "errors": [],
    }
    task = ComparisonTask.objects.get(project=project, external_id="c1")
    assert task.priority == 2.5 and not task.is_gold
    assert task.response_a.text == "Paris." and task.response_a.model_name == "m1"
    gold = ComparisonTask.objects.get(project=project, external_id="g1")
    assert gold.is_gold and gold.gold_answer == Choice.B


def test_it_imports_a_raw_ndjson_body(project, carol):
    response = client_for(carol).post(import_url(project), DATASET, content_type=NDJSON)
    assert response.status_code == 200, response.content
    assert response.json()["created"] == {"prompt": 1, "response": 2, "comparison": 2}
    assert ComparisonTask.objects.filter(project=project).count() == 2


def test_it_accepts_windows_line_endings_and_blank_lines(project, carol):
    body = DATASET.replace(b"\n", b"\r\n\r\n")
    response = client_for(carol).post(import_url(project), body, content_type=NDJSON)
    report = response.json()
    assert report["lines"] == 5 and report["errors"] == []
    # Line numbers count blank lines too, so they match what an editor shows.
    assert sum(report["created"].values()) == 5


def test_it_creates_nothing_when_the_same_file_is_imported_again(project, carol):
    client = client_for(carol)
    client.post(import_url(project), DATASET, content_type=NDJSON)
    counts = (Prompt.objects.count(), Response.objects.count(), ComparisonTask.objects.count())
    again = client.post(import_url(project), DATASET, content_type=NDJSON).json()
    assert again["created"] == {"prompt": 0, "response": 0, "comparison": 0}
    assert again["existing"] == 5 and again["errors"] == []
    assert (Prompt.objects.count(), Response.objects.count(), ComparisonTask.objects.count()) == counts


def test_it_reports_each_bad_line_by_number_and_imports_the_rest(project, carol):
    too_long = "x" * (settings.FLYWHEEL_MAX_TEXT_CHARS + 1)
    body = jsonl(
        {"type": "prompt", "external_id": "p1", "text": "A fine prompt."},  # 1
        '{"type": "prompt", "external_id": "p2", "text": "unterminated',  # 2
        {"type": "tweet", "external_id": "t1", "text": "hello"},  # 3
        {"type": "prompt", "text": "No id here."},  # 4
        {"type": "prompt", "external_id": "p3", "text": too_long},  # 5
        {"type": "prompt", "external_id": "p4", "text": "nul \u0000 inside"},  # 6
        {"type": "prompt", "external_id": "p5", "text": "bell \u0007 inside"},  # 7
        {"type": "response", "external_id": "r1", "prompt_external_id": "p1", "text": "Answer one."},  # 8
        {"type": "response", "external_id": "r2", "prompt_external_id": "p1", "text": "Answer two."},  # 9
        {
            "type": "comparison",
            "external_id": "c1",
            "prompt_external_id": "p1",
            "response_a_external_id": "r1",
            "response_b_external_id": "r2",
            "priority": "high",
        },  # 10
        {"type": "response", "external_id": "r3", "prompt_external_id": "nope", "text": "Orphan."},  # 11
        {"type": "prompt", "external_id": "p1", "text": "A different text, same id."},  # 12
        {"type": "prompt", "external_id": "p6", "text": 42},  # 13
        [1, 2, 3],  # 14 (not an object)
        {
            "type": "comparison",
            "external_id": "c2",
            "prompt_external_id": "p1",
            "response_a_external_id": "r1",
            "response_b_external_id": "r2",
        },  # 15
    )
    response = client_for(carol).post(import_url(project), body, content_type=NDJSON)
    assert response.status_code == 200, response.content
    report = response.json()
    reasons = {error["line"]: error["reason"] for error in report["errors"]}
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14}
    assert "invalid JSON" in reasons[2]
    assert "type must be one of" in reasons[3]
    assert "external_id is required" in reasons[4]
    assert f"limit is {settings.FLYWHEEL_MAX_TEXT_CHARS:,}" in reasons[5]
    assert "U+0000" in reasons[6]
    assert "U+0007" in reasons[7]
    assert "priority must be a finite number" in reasons[10]
    assert "unknown prompt external_id 'nope'" in reasons[11]
    assert "already exists with different text" in reasons[12]
    assert "text must be a string" in reasons[13]
    assert "JSON object" in reasons[14]
    assert report["created"] == {"prompt": 1, "response": 2, "comparison": 1}
    assert report["lines"] == 15
    assert_accounted(report)
    # The conflicting line changed nothing.
    assert Prompt.objects.get(project=project, external_id="p1").text == "A fine prompt."


def comparison(**fields: Any) -> dict[str, Any]:
    """A valid comparison of the base lines below, changed by `fields`."""
    record = {
        "type": "comparison",
        "external_id": "c",
        "prompt_external_id": "p0",
        "response_a_external_id": "r0a",
        "response_b_external_id": "r0b",
    }
    return record | fields


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "prompt", "external_id": "nul\u0000id", "text": "Hi."}, "external_id contains a control"),
        ({"type": "prompt", "external_id": ["p"], "text": "Hi."}, "external_id must be a string"),
        ({"type": "prompt", "external_id": "p" * 201, "text": "Hi."}, "longer than 200"),
        (
            {
                "type": "response",
                "external_id": "r",
                "prompt_external_id": "p0",
                "text": "Hi.",
                "model_name": "\x01",
            },
            "model_name contains a control",
        ),
        (comparison(priority=float("nan")), "priority must be a finite number"),
        (comparison(priority=float("inf")), "priority must be a finite number"),
        (comparison(priority=True), "priority must be a finite number"),
        (comparison(response_b_external_id="r0a"), "two different responses"),
        (comparison(is_gold="yes"), "is_gold must be true or false"),
        (comparison(is_gold=True), "gold_answer"),
        (comparison(is_gold=True, gold_answer="c"), "gold_answer"),
        ("[" * 100_000, "invalid JSON"),
    ],
    ids=[
        "nul-in-external-id",
        "external-id-list",
        "external-id-too-long",
        "control-char-in-model-name",
        "nan-priority",
        "infinite-priority",
        "boolean-priority",
        "same-response-twice",
        "is-gold-string",
        "gold-without-answer",
        "gold-unknown-answer",
        "nested-too-deep",
    ],
)
def test_it_reports_a_bad_field_without_failing_the_request(project, carol, record, reason):
    base = jsonl(
        {"type": "prompt", "external_id": "p0", "text": "Base prompt."},
        {"type": "response", "external_id": "r0a", "prompt_external_id": "p0", "text": "Base A."},
        {"type": "response", "external_id": "r0b", "prompt_external_id": "p0", "text": "Base B."},
    )
    # allow_nan is json.dumps' default; spelled out because the NaN case depends on it.
    line = json.dumps(record, allow_nan=True) if isinstance(record, dict) else record
    response = client_for(carol).post(import_url(project), base + jsonl(line), content_type=NDJSON)
    assert response.status_code == 200, response.content
    report = response.json()
    assert [error["line"] for error in report["errors"]] == [4]
    assert reason in report["errors"][0]["reason"]
    assert sum(report["created"].values()) == 3
    assert_accounted(report)


def test_it_reports_a_line_that_is_not_utf8(project, carol):
    body = jsonl({"type": "prompt", "external_id": "p1", "text": "Fine."}) + b'{"type": "prompt", "t\xff"}\n'
    upload = SimpleUploadedFile("data.jsonl", body)
    report = client_for(carol).post(import_url(project), {"file": upload}, format="multipart").json()
    assert report["created"]["prompt"] == 1
    assert [(e["line"], "UTF-8" in e["reason"]) for e in report["errors"]] == [(2, True)]
    assert_accounted(report)


def test_it_answers_an_empty_ndjson_body_with_an_empty_report(project, carol):
    response = client_for(carol).post(import_url(project), b"", content_type=NDJSON)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "lines": 0,
        "created": {"prompt": 0, "response": 0, "comparison": 0},
        "existing": 0,
        "errors": [],
    }


def test_it_rejects_an_import_without_a_file(project, carol):
    response = client_for(carol).post(import_url(project), {"other": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert "multipart field 'file'" in response.json()["detail"]


def test_it_rejects_an_import_in_an_unsupported_media_type(project, carol):
    response = client_for(carol).post(import_url(project), {"a": 1}, format="json")
    assert response.status_code == 415


def test_it_forbids_annotators_to_import(project, alice):
    response = client_for(alice).post(import_url(project), DATASET, content_type=NDJSON)
    assert response.status_code == 403
    assert not Prompt.objects.filter(project=project).exists()


def test_it_answers_404_for_an_import_into_an_unknown_project(carol):
    response = client_for(carol).post("/api/v1/projects/987654/import", DATASET, content_type=NDJSON)
    assert response.status_code == 404
    assert response.json()["detail"] == "No project with id 987654"


# --- Next task and submit --------------------------------------------------------------------


def next_task(client: APIClient, project: Project) -> dict[str, Any]:
    response = client.post(next_url(project))
    assert response.status_code == 200, response.content
    return response.json()


def test_it_hands_out_a_task_with_its_texts(project, alice):
    task = make_task(project, priority=3)
    payload = next_task(client_for(alice), project)
    assignment = Assignment.objects.get(pk=payload["assignment_id"])
    assert assignment.annotator == alice and assignment.task == task
    assert payload["task_id"] == task.pk
    assert payload["prompt"] == task.prompt.text
    assert payload["response_a"] == task.response_a.text
    assert payload["response_b"] == task.response_b.text
    assert payload["shown_left"] in ("a", "b")
    assert payload["expires_at"]


def test_it_answers_204_when_nothing_is_left(project, alice):
    client = client_for(alice)
    assert client.post(next_url(project)).status_code == 204
    make_task(project)
    payload = next_task(client, project)
    assert (
        client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json").status_code == 201
    )
    response = client.post(next_url(project))
    assert response.status_code == 204
    assert response.content == b""


def test_it_answers_409_when_comparisons_are_turned_off(project, alice):
    make_task(project)
    project.compare_enabled = False
    project.save()
    response = client_for(alice).post(next_url(project))
    assert response.status_code == 409
    assert "turned off" in response.json()["detail"]


def test_it_records_a_submit_once_per_idempotency_key(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    body = {
        "choice": "b",
        "strength": "slight",
        "rationale": "B is shorter and right.",
        "time_spent_ms": 4200,
        "idempotency_key": "k-1",
    }
    first = client.post(submit_url(payload["assignment_id"]), body, format="json")
    assert first.status_code == 201, first.content
    again = client.post(submit_url(payload["assignment_id"]), body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    judgment = Judgment.objects.get()
    assert (judgment.choice, judgment.strength, judgment.time_spent_ms) == ("b", "slight", 4200)
    assert judgment.source == JudgmentSource.API
    assert Assignment.objects.get(pk=payload["assignment_id"]).state == AssignmentState.SUBMITTED


def test_it_stores_a_blank_rationale_as_none(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    # A stray space or newline left in the rationale box is no reason to refuse the judgment.
    response = client.post(
        submit_url(payload["assignment_id"]), {"choice": "tie", "rationale": " \n "}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Judgment.objects.get().rationale == ""


def test_it_refuses_the_token_of_a_disabled_account(project, alice):
    make_task(project)
    client = client_for(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    response = client.post(next_url(project))
    assert response.status_code == 401
    assert not Assignment.objects.exists()


def test_it_refuses_a_second_submit_without_a_key(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    assert (
        client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json").status_code == 201
    )
    response = client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_judged"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "choice"),
        ({"choice": "maybe"}, "choice"),
        ({"choice": 1}, "choice"),
        ({"choice": None}, "choice"),
        ({"choice": "a", "strength": "enormous"}, "strength"),
        ({"choice": "a", "time_spent_ms": "abc"}, "time_spent_ms"),
        ({"choice": "a", "time_spent_ms": -5}, "time_spent_ms"),
        ({"choice": "a", "time_spent_ms": 1.5}, "time_spent_ms"),
        ({"choice": "a", "time_spent_ms": 86_400_001}, "time_spent_ms"),
        ({"choice": "a", "rationale": "r" * (services.MAX_RATIONALE_CHARS + 1)}, "rationale"),
        ({"choice": "a", "rationale": "nul \u0000"}, "rationale"),
        ({"choice": "a", "rationale": "escape \u001b[31m"}, "rationale"),
        ({"choice": "a", "rationale": ["list"]}, "rationale"),
        ({"choice": "a", "idempotency_key": "k" * (services.MAX_KEY_CHARS + 1)}, "idempotency_key"),
    ],
    ids=[
        "empty",
        "unknown-choice",
        "choice-number",
        "choice-null",
        "unknown-strength",
        "time-text",
        "time-negative",
        "time-fraction",
        "time-over-a-day",
        "rationale-too-long",
        "rationale-nul",
        "rationale-escape",
        "rationale-list",
        "key-too-long",
    ],
)
def test_it_rejects_a_bad_submit_naming_the_field(project, alice, body, field):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(submit_url(payload["assignment_id"]), body, format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    # DRF names the field as a key; a domain error names it in "field".
    assert field in answer or answer.get("field") == field, answer
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(pk=payload["assignment_id"]).state == AssignmentState.ACTIVE


def test_it_rejects_a_body_that_is_not_json(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(submit_url(payload["assignment_id"]), b"{choice", content_type="application/json")
    assert response.status_code == 400
    response = client.post(submit_url(payload["assignment_id"]), [1, 2], format="json")
    assert response.status_code == 400


def test_it_answers_404_for_an_unknown_assignment(alice):
    client = client_for(alice)
    for url in (submit_url(424242), skip_url(424242)):
        # The unknown id is the news, whatever the body says.
        for body in ({"choice": "a", "reason": "unclear"}, {}):
            response = client.post(url, body, format="json")
            assert response.status_code == 404, (url, body, response.content)
            assert response.json()["detail"] == "No assignment with id 424242"


def test_it_answers_404_for_ids_beyond_the_database_range(alice):
    client = client_for(alice)
    huge = 10**30
    assert (
        client.post(f"/api/v1/assignments/{huge}/submit", {"choice": "a"}, format="json").status_code == 404
    )
    assert client.post(f"/api/v1/projects/{huge}/next-task").status_code == 404


def test_it_forbids_submitting_on_another_annotators_assignment(project, alice, bob):
    make_task(project)
    payload = next_task(client_for(alice), project)
    bob_client = client_for(bob)
    response = bob_client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This assignment belongs to another annotator"
    response = bob_client.post(skip_url(payload["assignment_id"]), {"reason": "not mine"}, format="json")
    assert response.status_code == 403
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(pk=payload["assignment_id"]).state == AssignmentState.ACTIVE


def test_it_refuses_a_submit_after_a_skip(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    skipped = client.post(skip_url(payload["assignment_id"]), {"reason": "I can't read code"}, format="json")
    assert skipped.status_code == 200
    assert skipped.json() == {"assignment_id": payload["assignment_id"], "state": "skipped"}
    response = client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "skipped"
    # A second skip of a closed assignment is a conflict too, not a silent success.
    again = client.post(skip_url(payload["assignment_id"]), {"reason": "again"}, format="json")
    assert again.status_code == 409


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "r" * 501}])
def test_it_requires_a_reason_to_skip(project, alice, body):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(skip_url(payload["assignment_id"]), body, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    assert Assignment.objects.get(pk=payload["assignment_id"]).state == AssignmentState.ACTIVE


def test_it_refuses_a_late_submit_on_a_task_that_filled_up(project, alice, bob):
    project.overlap_k = 1
    project.save()
    make_task(project)
    alice_client = client_for(alice)
    late = next_task(alice_client, project)
    # alice walks away; her lease lapses and bob takes the only seat.
    Assignment.objects.filter(pk=late["assignment_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    bob_client = client_for(bob)
    seat = next_task(bob_client, project)
    assert (
        bob_client.post(submit_url(seat["assignment_id"]), {"choice": "a"}, format="json").status_code == 201
    )
    response = alice_client.post(
        submit_url(late["assignment_id"]), {"choice": "b", "rationale": "Long thought."}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "task_full"
    assert Judgment.objects.count() == 1


# --- Exports ---------------------------------------------------------------------------------


def judge(task: ComparisonTask, user: User, choice: str, rationale: str = "") -> Judgment:
    assignment = services.assignment_next(project=task.project, annotator=user)
    assert assignment is not None and assignment.task_id == task.pk
    judgment, _ = services.comparison_submit(
        assignment=assignment, annotator=user, choice=choice, rationale=rationale
    )
    return judgment


def test_it_exports_judgments_as_json_lines_to_curators(project, alice, bob, carol):
    task = make_task(project, external_id="c-7")
    judge(task, alice, Choice.A, "A cites a source.")
    judge(task, bob, Choice.TIE)
    response = client_for(carol).get(reverse("api-judgments", kwargs={"project_id": project.pk}))
    assert response.status_code == 200
    assert response["Content-Type"] == NDJSON
    rows = read_jsonl(response)
    assert [(r["annotator"], r["choice"], r["task_external_id"]) for r in rows] == [
        ("alice", "a", "c-7"),
        ("bob", "tie", "c-7"),
    ]
    assert rows[0]["rationale"] == "A cites a source." and rows[0]["strength"] == "clear"


@pytest.mark.parametrize("name", ["api-judgments", "api-preferences", "api-annotators"])
def test_it_forbids_annotators_to_read_exports(project, alice, bob, name):
    task = make_task(project)
    judge(task, bob, Choice.A, "bob's private reasoning")
    response = client_for(alice).get(reverse(name, kwargs={"project_id": project.pk}))
    assert response.status_code == 403
    assert b"bob" not in response.content


@pytest.mark.parametrize("name", ["api-judgments", "api-preferences", "api-annotators"])
def test_it_answers_404_for_exports_of_an_unknown_project(carol, name):
    response = client_for(carol).get(reverse(name, kwargs={"project_id": 31337}))
    assert response.status_code == 404
    assert response.json()["detail"] == "No project with id 31337"


def test_it_weights_preferences_by_trust(project, alice, bob, carol):
    erin = make_user("erin", Role.ANNOTATOR)
    task = make_task(project, external_id="c-1")
    # Two doubtful votes for B against one trusted vote for A: trust, not headcount, decides.
    User.objects.filter(pk=alice.pk).update(trust=0.9)
    User.objects.filter(pk__in=[bob.pk, erin.pk]).update(trust=0.3)
    judge(task, alice, Choice.A)
    judge(task, bob, Choice.B)
    judge(task, erin, Choice.B)
    response = client_for(carol).get(reverse("api-preferences", kwargs={"project_id": project.pk}))
    assert response.status_code == 200
    [row] = read_jsonl(response)
    assert row["external_id"] == "c-1" and row["votes"] == 3
    assert row["winner"] == "a"
    assert row["weights"] == {"a": 0.9, "b": 0.6}
    assert row["agreement"] == pytest.approx(0.6)
    assert row["prompt"] == task.prompt.text


def test_it_leaves_excluded_annotators_out_of_preferences(project, alice, bob, carol):
    erin = make_user("erin", Role.ANNOTATOR)
    counted = make_task(project, priority=2)
    only_excluded = make_task(project, priority=1)
    judge(counted, alice, Choice.A)
    judge(counted, bob, Choice.B)
    judge(counted, erin, Choice.B)
    judge(only_excluded, bob, Choice.B)
    User.objects.filter(pk__in=[bob.pk, erin.pk]).update(judgments_excluded=True)
    response = client_for(carol).get(reverse("api-preferences", kwargs={"project_id": project.pk}))
    rows = read_jsonl(response)
    # A task nobody counted for has no preference to export.
    assert [r["task_id"] for r in rows] == [counted.pk]
    assert rows[0]["winner"] == "a" and rows[0]["votes"] == 1 and rows[0]["weights"] == {"a": 1.0}


def test_it_serves_annotator_stats_to_curators(project, alice, carol):
    judge(make_task(project), alice, Choice.A)
    response = client_for(carol).get(reverse("api-annotators", kwargs={"project_id": project.pk}))
    assert response.status_code == 200
    by_name = {row["username"]: row for row in response.json()["annotators"]}
    assert by_name["alice"]["judgments"] == 1


# --- Projects --------------------------------------------------------------------------------


def test_it_lets_an_admin_create_a_project(dave):
    body = {"name": "Code review", "guidelines": "Prefer *correct* code.", "overlap_k": 2, "gold_rate": 0.2}
    response = client_for(dave).post(reverse("api-projects"), body, format="json")
    assert response.status_code == 201, response.content
    project = Project.objects.get(name="Code review")
    assert response.json()["id"] == project.pk
    assert (project.overlap_k, project.gold_rate, project.lease_seconds) == (2, 0.2, 600)


def test_it_lists_projects_to_any_signed_in_user(project, alice):
    response = client_for(alice).get(reverse("api-projects"))
    assert response.status_code == 200
    assert [p["name"] for p in response.json()] == ["Helpful assistant"]


@pytest.mark.parametrize("who", ["alice", "carol", None])
def test_it_lets_only_admins_create_projects(request, who):
    user = request.getfixturevalue(who) if who else None
    response = client_for(user).post(reverse("api-projects"), {"name": "Sneaky"}, format="json")
    assert response.status_code == (401 if user is None else 403)
    assert not Project.objects.filter(name="Sneaky").exists()


def test_it_answers_409_for_a_duplicate_project_name(project, dave):
    response = client_for(dave).post(reverse("api-projects"), {"name": " Helpful assistant "}, format="json")
    assert response.status_code == 409
    assert response.json()["field"] == "name"
    assert Project.objects.filter(name="Helpful assistant").count() == 1


def test_it_answers_409_when_a_concurrent_create_takes_the_name(project, dave, monkeypatch):
    # Stand in for the race: the existence check sees nothing, the unique constraint does.
    monkeypatch.setattr(Project.objects, "filter", lambda *args, **kwargs: Project.objects.none())
    response = client_for(dave).post(reverse("api-projects"), {"name": "Helpful assistant"}, format="json")
    monkeypatch.undo()
    assert response.status_code == 409
    assert Project.objects.filter(name="Helpful assistant").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": "bell \u0007"}, "name"),
        ({"name": "ok", "overlap_k": 0}, "overlap_k"),
        ({"name": "ok", "overlap_k": 51}, "overlap_k"),
        ({"name": "ok", "overlap_k": "three"}, "overlap_k"),
        ({"name": "ok", "gold_rate": 1.5}, "gold_rate"),
        ({"name": "ok", "gold_rate": "abc"}, "gold_rate"),
        ({"name": "ok", "gold_rate": "nan"}, "gold_rate"),
        ({"name": "ok", "lease_seconds": 5}, "lease_seconds"),
        ({"name": "ok", "guidelines": None}, "guidelines"),
    ],
)
def test_it_rejects_bad_project_values(dave, body, field):
    response = client_for(dave).post(reverse("api-projects"), body, format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert field in answer or answer.get("field") == field, answer
    assert not Project.objects.exists()


# --- Schema ----------------------------------------------------------------------------------


def test_it_serves_the_openapi_schema_and_docs(alice):
    client = client_for(alice)
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/assignments/{assignment_id}/submit" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_it_generates_the_schema_without_warnings(tmp_path: Path):
    # --fail-on-warn turns any guess drf-spectacular had to make into a failure.
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi:")


# --- Submit and take the next task in one request --------------------------------------------


def test_it_hands_out_the_next_lease_with_a_submit_when_asked(project, alice):
    make_task(project, priority=2)
    second = make_task(project, priority=1)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(submit_url(payload["assignment_id"]), {"choice": "a", "next": True}, format="json")
    assert response.status_code == 201, response.content
    lease = response.json()["next"]
    assert lease["task_id"] == second.pk and lease["prompt"] == second.prompt.text
    # It is a real lease: next-task gives the same one back, and it takes the judgment.
    assert next_task(client, project)["assignment_id"] == lease["assignment_id"]
    last = client.post(submit_url(lease["assignment_id"]), {"choice": "b", "next": True}, format="json")
    assert last.status_code == 201 and last.json()["next"] is None
    assert Judgment.objects.count() == 2


def test_it_leaves_next_out_unless_asked(project, alice):
    make_task(project)
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json")
    assert "next" not in response.json()
    assert Assignment.objects.filter(annotator=alice, state=AssignmentState.ACTIVE).count() == 0


def test_it_refuses_a_next_that_is_not_a_boolean(project, alice):
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    response = client.post(
        submit_url(payload["assignment_id"]), {"choice": "a", "next": "yes"}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "next"
    assert not Judgment.objects.exists()


def test_it_keeps_the_judgment_when_no_next_lease_can_be_given(project, alice):
    make_task(project)
    make_task(project)
    client = client_for(alice)
    payload = next_task(client, project)
    project.compare_enabled = False
    project.save()
    response = client.post(submit_url(payload["assignment_id"]), {"choice": "a", "next": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["next"] is None and "turned off" in response.json()["next_error"]
    assert Judgment.objects.filter(annotator=alice).count() == 1
