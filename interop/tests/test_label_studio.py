"""Label Studio sync against a real Label Studio server: people annotate through its REST API,
as the labeling UI does, and the sync brings their work back."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from feedback.models import Assignment, AssignmentState, Judgment, JudgmentSource, Response, ResponseSource
from feedback.tests.factories import make_project, make_prompt, make_response, make_task
from flywheel.errors import Conflict
from flywheel.models import AuditLog, Role
from interop import tasks
from interop.label_studio import LabelStudioError, LabelStudioUnavailable, label_studio_sync
from interop.models import LabelStudioLink, LinkKind
from interop.services import label_studio_link_save
from interop.tests.label_studio import Server, _free_port

PAIRWISE = "preference"


def pick(side: str, rationale: str = "") -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [
        {"from_name": PAIRWISE, "to_name": PAIRWISE, "type": "pairwise", "value": {"selected": side}}
    ]
    if rationale:
        result.append(
            {
                "from_name": "rationale",
                "to_name": "prompt",
                "type": "textarea",
                "value": {"text": [rationale]},
            }
        )
    return result


def ls_person(client: Any, email: str) -> int:
    return int(client.users.create(username=email.split("@")[0], email=email).id)


def ls_tasks(client: Any, ls_project_id: int) -> dict[int, Any]:
    """Label Studio's tasks, by the Flywheel id they carry."""
    found = {}
    for task in client.tasks.list(project=ls_project_id, fields="all"):
        data = task.data
        found[data.get("flywheel_task_id") or data.get("flywheel_prompt_id")] = task
    return found


def side_of(task: Any, response: str) -> str:
    """The side Label Studio shows a Flywheel response ("a" or "b") on."""
    return "left" if task.data["flywheel_left"] == response else "right"


def test_it_pushes_comparisons_and_pulls_judgments_back(label_studio_server: Server, bob, carol):
    project = make_project(name="LS comparisons", overlap_k=2, show_suggestions=True)
    suggested = make_task(project, priority=3, suggested_preference=0.8)
    plain = make_task(project, priority=2)
    rated = make_task(project, priority=1)
    make_task(project, is_gold=True, gold_answer="a")
    full = make_task(project)
    Judgment.objects.create(task=full, annotator=carol, choice="a")
    Judgment.objects.create(task=full, annotator=bob, choice="b")
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=label_studio_server.url,
        token=label_studio_server.token,
        actor=carol,
    )

    first = label_studio_sync(link_id=link.pk, actor=carol)
    link.refresh_from_db()
    assert first.project_created and first.pushed == 3 and link.ls_project_id
    assert link.last_error == "" and link.last_synced_at is not None
    client = label_studio_server.client()
    pushed = ls_tasks(client, link.ls_project_id)
    assert set(pushed) == {suggested.pk, plain.pk, rated.pk}
    shown = pushed[suggested.pk]
    left = suggested.response_a if shown.data["flywheel_left"] == "a" else suggested.response_b
    assert shown.data["prompt"] == suggested.prompt.text and shown.data["left"] == left.text
    [prediction] = shown.predictions
    assert prediction.model_version == "flywheel-reward" and prediction.score == pytest.approx(0.8)
    assert prediction.result[0]["value"] == {"selected": side_of(shown, "a")}
    assert not pushed[plain.pk].predictions

    # bob is a Flywheel annotator (same email); zoe exists only in Label Studio.
    bob_ls, zoe_ls = ls_person(client, "bob@example.com"), ls_person(client, "zoe@example.com")
    bob_note = client.annotations.create(
        pushed[suggested.pk].id,
        result=pick(side_of(pushed[suggested.pk], "b"), "B cites a source."),
        completed_by=bob_ls,
        lead_time=12.5,
    )
    ranked = [
        {"from_name": "rank", "to_name": "items", "type": "ranker", "value": {"ranker": {"rank": ["a", "b"]}}}
    ]
    client.annotations.create(pushed[plain.pk].id, result=ranked, completed_by=zoe_ls)
    client.annotations.create(pushed[rated.pk].id, result=[], was_cancelled=True, completed_by=zoe_ls)
    broken = client.annotations.create(
        pushed[rated.pk].id,
        result=[
            {"from_name": PAIRWISE, "to_name": PAIRWISE, "type": "pairwise", "value": {"selected": "middle"}}
        ],
        completed_by=bob_ls,
    )

    second = label_studio_sync(link_id=link.pk, actor=None, trigger="test")
    assert second.pulled == {"judgments": 2, "skips": 1}
    assert second.errors == [
        {
            "annotation": broken.id,
            "task": pushed[rated.pk].id,
            "reason": "pairwise selected is 'middle', not left or right",
        }
    ]
    by_bob = Judgment.objects.get(task=suggested, annotator=bob)
    assert (by_bob.choice, by_bob.rationale, by_bob.source) == (
        "b",
        "B cites a source.",
        JudgmentSource.IMPORT,
    )
    assert (
        by_bob.time_spent_ms == 12500
        and by_bob.external_id == f"label-studio:{link.ls_project_id}:{bob_note.id}"
    )
    by_zoe = Judgment.objects.get(task=plain)
    assert (
        by_zoe.choice == "a"
        and by_zoe.annotator.username == "ls-zoe"
        and by_zoe.annotator.role == Role.ANNOTATOR
    )
    skip = Assignment.objects.get(task=rated, annotator=by_zoe.annotator)
    assert skip.state == AssignmentState.SKIPPED and skip.skip_reason == "Skipped in Label Studio"

    # Nothing new in Label Studio: nothing new here.
    third = label_studio_sync(link_id=link.pk)
    assert third.pulled == {} and third.unchanged == 3 and third.pushed == 0 and len(third.errors) == 1
    assert Judgment.objects.filter(task__project=project).count() == 4

    # bob changes his mind; the judgment follows.
    client.annotations.update(
        bob_note.id, result=pick(side_of(pushed[suggested.pk], "a"), "On reflection, A.")
    )
    out = io.StringIO()
    call_command("interop", "label-studio", "sync", "--project", str(project.pk), stdout=out)
    assert '"judgments_updated": 1' in out.getvalue()
    by_bob.refresh_from_db()
    assert (by_bob.choice, by_bob.rationale) == ("a", "On reflection, A.")
    assert Judgment.objects.filter(task__project=project).count() == 4
    assert AuditLog.objects.filter(action="label_studio.sync", target_id=str(link.pk)).count() == 4


def test_it_pushes_prompts_that_need_an_answer_and_pulls_demonstrations(
    label_studio_server: Server, alice, carol
):
    project = make_project(name="LS demonstrations")
    needs = make_prompt(project, "Explain recursion to a child.")
    answered = make_prompt(project, "Say hi.")
    make_response(answered, "Hi!", source=ResponseSource.DEMONSTRATION, author=alice)
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.DEMONSTRATION,
        url=label_studio_server.url,
        token=label_studio_server.token,
        actor=carol,
    )
    assert label_studio_sync(link_id=link.pk).pushed == 1
    link.refresh_from_db()
    client = label_studio_server.client()
    [task] = ls_tasks(client, link.ls_project_id).values()
    assert task.data == {"prompt": needs.text, "flywheel_prompt_id": needs.pk}
    alice_ls = ls_person(client, "alice@example.com")
    answer = "It is when something is defined in terms of itself, like a doll inside a doll."
    client.annotations.create(
        task.id,
        result=[
            {"from_name": "answer", "to_name": "prompt", "type": "textarea", "value": {"text": [answer]}}
        ],
        completed_by=alice_ls,
    )
    report = label_studio_sync(link_id=link.pk)
    assert report.pulled == {"demonstrations": 1} and report.pushed == 0
    demo = Response.objects.get(prompt=needs)
    assert (demo.text, demo.author, demo.source) == (answer, alice, ResponseSource.DEMONSTRATION)
    assert label_studio_sync(link_id=link.pk).pulled == {}


def test_it_stores_clear_errors_for_a_bad_token_and_a_deleted_project(label_studio_server: Server, carol):
    project = make_project(name="LS errors")
    make_task(project)
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=label_studio_server.url,
        token="not-the-token",
        actor=carol,
    )
    with pytest.raises(LabelStudioError, match="refused the token"):
        label_studio_sync(link_id=link.pk)
    link.refresh_from_db()
    assert (
        "refused the token (HTTP 401)" in link.last_error
        and link.last_synced_at is None
        and link.claimed_at is None
    )

    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=label_studio_server.url,
        token=label_studio_server.token,
        actor=carol,
    )
    label_studio_sync(link_id=link.pk)
    link.refresh_from_db()
    label_studio_server.client().projects.delete(id=link.ls_project_id)
    with pytest.raises(LabelStudioError, match="no longer exists"):
        label_studio_sync(link_id=link.pk)
    link.refresh_from_db()
    assert f"project {link.ls_project_id}" in link.last_error and link.last_synced_at is not None
    assert tasks.label_studio_sync.apply(args=[link.pk]).result == {"error": link.last_error}
    errors = AuditLog.objects.filter(action="label_studio.sync").values_list("after__error", flat=True)
    assert any("no longer exists" in error for error in errors)


def test_it_records_an_unreachable_server_and_the_task_retries(project, carol):
    make_task(project)
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=f"http://127.0.0.1:{_free_port()}",
        token="t",
        actor=carol,
    )
    with pytest.raises(LabelStudioUnavailable, match="unreachable"):
        label_studio_sync(link_id=link.pk)
    link.refresh_from_db()
    assert "is unreachable while reading" not in link.last_error  # no project yet: it was creating one
    assert "unreachable while creating the project: ConnectError" in link.last_error
    assert link.claimed_at is None and link.last_attempt_at is not None
    # Run eagerly, each retry runs at once: the first try and six retries, then it gives up.
    attempts = AuditLog.objects.filter(action="label_studio.sync", target_id=str(link.pk))
    assert attempts.count() == 1
    result = tasks.label_studio_sync.apply(args=[link.pk])
    assert result.state == "FAILURE" and isinstance(result.result, LabelStudioUnavailable)
    assert attempts.count() == 1 + 1 + tasks.label_studio_sync.max_retries


def test_it_runs_one_sync_of_a_link_at_a_time(project, carol):
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=f"http://127.0.0.1:{_free_port()}",
        token="t",
        actor=carol,
    )
    LabelStudioLink.objects.filter(pk=link.pk).update(claimed_at=timezone.now())
    with pytest.raises(Conflict):
        label_studio_sync(link_id=link.pk)
    # A claim older than an hour belonged to a sync that died; the next one takes over.
    LabelStudioLink.objects.filter(pk=link.pk).update(claimed_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(LabelStudioUnavailable):
        label_studio_sync(link_id=link.pk)


def test_it_adopts_tasks_a_crashed_push_never_recorded(label_studio_server: Server, carol):
    project = make_project(name="LS adopt")
    for _ in range(3):
        make_task(project)
    link, _ = label_studio_link_save(
        project=project,
        kind=LinkKind.COMPARISON,
        url=label_studio_server.url,
        token=label_studio_server.token,
        actor=carol,
    )
    assert label_studio_sync(link_id=link.pk).pushed == 3
    # As if Flywheel died after Label Studio created the tasks and before it recorded them.
    link.tasks.all().delete()
    again = label_studio_sync(link_id=link.pk)
    assert (again.adopted, again.pushed) == (3, 0)
    link.refresh_from_db()
    assert len(ls_tasks(label_studio_server.client(), link.ls_project_id)) == 3
