"""The annotator UI in a real Chromium: keyboard-only judging, writing, errors, safety.

Each test drives the pages the way an annotator does (typing, keys 1-4, S, R, K, Esc)
against pytest-django's live server, then checks the rows those keys produced. Screenshots
of every page land in test-artifacts/screenshots/ for a human to look at.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Dialog, Locator, Page, expect

from feedback import services
from feedback.models import (
    Assignment,
    AssignmentState,
    Choice,
    ComparisonTask,
    Judgment,
    Project,
    Prompt,
    PromptSource,
    Response,
    ResponseSource,
    Side,
    Strength,
)
from feedback.tests.factories import PASSWORD, make_prompt, make_response, make_task
from flywheel.models import User
from flywheel.tests import browser
from flywheel.tests.browser import VIEWPORT, log_in, log_out, screenshot

pytestmark = pytest.mark.browser

TASK_FORM = "[data-task-form]"


# --- Helpers ---------------------------------------------------------------------------------


def _long_answer(label: str) -> str:
    """A realistic model answer: long enough to need scrolling, with a list and code."""
    steps = "\n".join(
        f"{i}. Step {i}: shrink the problem and call the same function again." for i in range(1, 8)
    )
    code = "```python\ndef countdown(n):\n    if n:\n        print(n)\n        countdown(n - 1)\n```"
    filler = "A base case stops the calls, or they would go on forever. " * 12
    return f"**Answer {label}.** Recursion is a function calling itself.\n\n{steps}\n\n{code}\n\n{filler}"


def _make_tasks(project: Project, count: int) -> list[ComparisonTask]:
    tasks = []
    for n in range(1, count + 1):
        prompt = make_prompt(
            project, text=f"Prompt {n}: explain recursion to a ten-year-old, with an example."
        )
        tasks.append(
            make_task(
                project,
                # Descending priority fixes the order in which tasks are served.
                priority=count - n,
                prompt=prompt,
                response_a=make_response(prompt, text=_long_answer(f"A{n}")),
                response_b=make_response(prompt, text=_long_answer(f"B{n}")),
            )
        )
    return tasks


def _compare_url(project: Project) -> str:
    return f"/projects/{project.pk}/compare"


def _current_assignment(page: Page) -> Assignment:
    assignment_id = page.locator(TASK_FORM).get_attribute("data-assignment")
    assert assignment_id is not None
    return Assignment.objects.select_related("task__response_a", "task__response_b").get(
        pk=int(assignment_id)
    )


def _wait_for_swap_from(page: Page, assignment: Assignment) -> None:
    """Wait until #task holds something other than this assignment's form."""
    page.wait_for_function(
        """(previous) => {
            const form = document.querySelector('[data-task-form]');
            return !form || form.dataset.assignment !== String(previous);
        }""",
        arg=assignment.pk,
    )


def _box(locator: Locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not rendered"
    return box


def _assert_in_viewport(locator: Locator) -> None:
    box = _box(locator)
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], f"{locator} is off screen: {box}"


def _rationale(page: Page) -> Locator:
    return page.get_by_label("Rationale (optional)")


class _KnownSides:
    """Stands in for the random module inside feedback.services (the live server runs in this
    process), so leases draw the left sides a test needs instead of a coin toss that passes a
    swapped key mapping one run in eight."""

    def __init__(self, sides: Iterable[str]) -> None:
        self._sides = iter(sides)

    def choice(self, options: list[str]) -> str:
        # On PostgreSQL every next-task draws a side, a lease or not; past the script, at random.
        return next(self._sides, None) or random.choice(options)

    def random(self) -> float:
        return random.random()


@dataclass
class Judged:
    assignment: Assignment
    key: str
    strength: str
    rationale: str


def _judge(page: Page, *, key: str, slight: bool, rationale: str) -> Judged:
    """Judge the task on screen with the keyboard only and wait for the next one to swap in."""
    assignment = _current_assignment(page)
    left_label, right_label = ("A", "B") if assignment.left_side == Side.A else ("B", "A")
    # What is drawn on the left must be what key 1 records as the winner.
    expect(page.get_by_test_id("response-left")).to_contain_text(f"Answer {left_label}")
    expect(page.get_by_test_id("response-right")).to_contain_text(f"Answer {right_label}")
    if slight:
        page.keyboard.press("s")
        expect(page.get_by_label("Slightly")).to_be_checked()
    else:
        expect(page.get_by_label("Clearly")).to_be_checked()
    if rationale:
        page.keyboard.press("r")
        expect(_rationale(page)).to_be_focused()
        # The rationale holds digits and shortcut letters: typing them must not judge or skip.
        page.keyboard.type(rationale)
        page.keyboard.press("Escape")
        expect(_rationale(page)).not_to_be_focused()
        expect(_rationale(page)).to_have_value(rationale)
    else:
        # Reading time, so even an instant verdict has a duration to measure.
        page.wait_for_timeout(50)
    with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
        page.keyboard.press(key)
    assert response.value.status == 200
    _wait_for_swap_from(page, assignment)
    return Judged(assignment, key, Strength.SLIGHT if slight else Strength.CLEAR, rationale)


# --- Tests -----------------------------------------------------------------------------------


def test_it_judges_three_comparisons_and_writes_a_demonstration_by_keyboard(
    browser_page: Page, live_server, alice: User, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = browser_page
    _make_tasks(project, 3)
    # Key 1 on a lease drawn with B on the left, and key 2 on another: the cases a mapping
    # that ignores left_side gets wrong.
    monkeypatch.setattr(services, "random", _KnownSides([Side.B, Side.B, Side.A]))

    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    screenshot(page, "login")
    log_in(page, username="alice", password=PASSWORD)
    expect(page.get_by_role("heading", name="Hello, alice")).to_be_visible()
    expect(page.get_by_test_id("queue")).to_have_text("3")
    expect(page.get_by_test_id("judged")).to_have_text("0")
    screenshot(page, "home")

    page.get_by_role("link", name="Compare responses").click()
    expect(page.locator(TASK_FORM)).to_be_visible()
    # On a 1280x800 screen the responses sit side by side and the verdict needs no scrolling.
    left, right = _box(page.get_by_test_id("response-left")), _box(page.get_by_test_id("response-right"))
    assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 1
    for name in ("A is better", "B is better", "Tie", "Both bad"):
        _assert_in_viewport(page.get_by_role("button", name=name))
    _assert_in_viewport(_rationale(page))
    _assert_in_viewport(page.get_by_role("button", name="Skip"))
    screenshot(page, "compare")
    # A full page load would wipe this; an htmx swap of #task keeps it.
    page.evaluate("window.__marker = 1")

    judged = [
        _judge(page, key="1", slight=True, rationale="Option 1 is right; 2 skips the base case. R K S"),
        _judge(page, key="2", slight=False, rationale="B's countdown example\nis kinder to a 10-year-old."),
        _judge(page, key="4", slight=False, rationale=""),
    ]
    assert page.evaluate("window.__marker") == 1
    expect(page.get_by_test_id("no-task")).to_be_visible()
    screenshot(page, "compare-done")

    assert [item.assignment.left_side for item in judged] == [Side.B, Side.B, Side.A]
    rows = {j.assignment_id: j for j in Judgment.objects.filter(annotator=alice)}
    assert len(rows) == 3
    for item in judged:
        row = rows[item.assignment.pk]
        left_side = item.assignment.left_side
        # Key 1 means the LEFT response: response_a only when left_side is a.
        expected = {"1": left_side, "2": Side.B if left_side == Side.A else Side.A, "4": Choice.BOTH_BAD}
        assert row.task_id == item.assignment.task_id
        assert row.left_side == left_side
        assert row.choice == expected[item.key]
        # The service drops strength for tie and both-bad verdicts.
        assert row.strength == (item.strength if row.choice in (Choice.A, Choice.B) else "")
        assert row.rationale == item.rationale
        assert row.time_spent_ms is not None and row.time_spent_ms > 0

    page.get_by_role("link", name="Write a demonstration").click()
    instruction = "Explain what a hash map is in two sentences."
    answer = "A hash map stores values under keys.\nIt finds a value fast by hashing its key."
    page.get_by_label("Instruction").focus()
    page.keyboard.type(instruction)
    expect(page.locator("#instruction-count")).to_have_text(f"{len(instruction)} / 8000 characters")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Ideal response")).to_be_focused()
    page.keyboard.type(answer)
    expect(page.locator("#response-count")).to_contain_text(f"{len(answer)} / ")
    _assert_in_viewport(page.get_by_role("button", name="Save demonstration"))
    screenshot(page, "write")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save demonstration")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.locator("#instruction-count")).to_have_text("0 / 8000 characters")

    prompt = Prompt.objects.get(author=alice)
    assert (prompt.text, prompt.source, prompt.project_id) == (instruction, PromptSource.HUMAN, project.pk)
    response = Response.objects.get(author=alice)
    assert (response.prompt_id, response.source) == (prompt.pk, ResponseSource.DEMONSTRATION)
    # Browsers submit line breaks as CRLF; the stored demonstration keeps the typed "\n".
    assert response.text == answer


def test_it_skips_with_a_chosen_reason_by_keyboard(browser_page: Page, alice: User, project: Project) -> None:
    page = browser_page
    _make_tasks(project, 2)
    log_in(page, username="alice", password=PASSWORD)
    page.goto(_compare_url(project))
    page.evaluate("window.__marker = 1")
    assignment = _current_assignment(page)

    page.keyboard.press("k")
    reason = page.get_by_label("Skip because")
    expect(reason).to_be_focused()
    # K alone skips nothing: a skip cannot be undone, so it waits for the reason.
    page.keyboard.press("ArrowDown")
    expect(reason).to_have_value("The prompt is unclear or broken")
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.ACTIVE
    with page.expect_response(lambda r: r.url.endswith("/skip")) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 200
    _wait_for_swap_from(page, assignment)

    assert page.evaluate("window.__marker") == 1
    assignment.refresh_from_db()
    assert (assignment.state, assignment.skip_reason) == (
        AssignmentState.SKIPPED,
        "The prompt is unclear or broken",
    )
    assert not Judgment.objects.filter(annotator=alice).exists()
    expect(page.get_by_test_id("prompt")).to_contain_text("Prompt 2")

    # The Skip button lives in the verdict form's markup but submits #skip-form: by mouse too.
    second = _current_assignment(page)
    page.get_by_role("button", name="Skip").click()
    expect(page.get_by_test_id("no-task")).to_be_visible()
    second.refresh_from_db()
    assert (second.state, second.skip_reason) == (AssignmentState.SKIPPED, "I cannot judge this topic")
    assert not Judgment.objects.filter(annotator=alice).exists()


def test_it_shows_model_html_as_text_and_runs_none_of_it(
    browser_page: Page, alice: User, project: Project
) -> None:
    page = browser_page
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    prompt = make_prompt(project, text="Show me some HTML, <b>please</b>.")
    hostile = make_response(
        prompt,
        text="Here: <script>alert(1)</script> and <img src=x onerror=alert(1)>\n\n**Bold** still works.",
    )
    fenced = make_response(prompt, text="```html\n<script>alert(2)</script>\n```")
    make_task(project, prompt=prompt, response_a=hostile, response_b=fenced)

    log_in(page, username="alice", password=PASSWORD)
    page.goto(_compare_url(project))
    # An <img src=x> would fetch /x and fire onerror once that fails; wait for the network
    # to settle so a live handler would have had its chance.
    page.wait_for_load_state("networkidle")
    screenshot(page, "compare-xss")

    pane = page.locator(".response .prose", has_text="Here:")
    text = pane.text_content() or ""
    assert "<script>alert(1)</script>" in text
    assert "<img src=x onerror=alert(1)>" in text
    assert pane.locator("script, img").count() == 0
    # Sanitizing must not cost the annotator the markdown.
    expect(pane.locator("strong")).to_have_text("Bold")
    code = page.locator(".response .prose pre code")
    expect(code).to_have_text("<script>alert(2)</script>")
    assert page.locator("#task script, #task img").count() == 0
    expect(page.get_by_test_id("prompt")).to_have_text("Show me some HTML, <b>please</b>.")

    assignment = _current_assignment(page)
    with page.expect_response(lambda r: r.url.endswith("/submit")):
        page.keyboard.press("3")
    _wait_for_swap_from(page, assignment)
    assert dialogs == []
    judgment = Judgment.objects.get(annotator=alice)
    assert (judgment.choice, judgment.strength) == (Choice.TIE, "")


def test_it_keeps_the_rationale_when_a_late_submit_finds_the_task_full(
    browser_page: Page, alice: User, bob: User, project: Project
) -> None:
    page = browser_page
    project.overlap_k = 1
    project.save()
    _make_tasks(project, 1)
    log_in(page, username="alice", password=PASSWORD)
    page.goto(_compare_url(project))
    mine = _current_assignment(page)

    # alice reads past her lease; meanwhile bob takes the freed seat and fills the task.
    Assignment.objects.filter(pk=mine.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    lease = services.assignment_next(project=project, annotator=bob)
    assert lease is not None and lease.task_id == mine.task_id
    services.comparison_submit(assignment=lease, annotator=bob, choice=Choice.B)

    rationale = "Left explains the base case; right never stops."
    page.keyboard.press("r")
    page.keyboard.type(rationale)
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
        page.keyboard.press("1")
    assert response.value.status == 409

    error = page.locator(".controls").get_by_test_id("error")
    expect(error).to_contain_text("expired")
    expect(_rationale(page)).to_have_value(rationale)
    expect(page.get_by_label("Slightly")).to_be_checked()
    # Next to the controls: just above the verdict buttons, on screen without scrolling.
    _assert_in_viewport(error)
    gap = _box(page.get_by_role("button", name="A is better"))["y"] - _box(error)["y"]
    assert 0 < gap < 120, gap
    # A retry can only fail again; the page offers the next task, focused for Enter.
    expect(page.get_by_role("button", name="A is better")).to_be_disabled()
    next_task = page.get_by_role("button", name="Take the next task")
    expect(next_task).to_be_focused()
    screenshot(page, "compare-409")
    assert not Judgment.objects.filter(annotator=alice).exists()

    page.keyboard.press("Enter")
    expect(page.get_by_test_id("no-task")).to_be_visible()


def test_it_shows_write_errors_beside_the_field_and_keeps_the_text(
    browser_page: Page, alice: User, project: Project
) -> None:
    page = browser_page
    log_in(page, username="alice", password=PASSWORD)
    page.goto(f"/projects/{project.pk}/write")
    instruction, answer = page.get_by_label("Instruction"), page.get_by_label("Ideal response")

    instruction.focus()
    page.keyboard.type("   ")
    page.keyboard.press("Tab")
    page.keyboard.type("An answer to nothing.")
    page.keyboard.press("Tab")
    with page.expect_response(lambda r: r.url.endswith("/write")) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 400
    error = page.locator("#instruction-error")
    expect(error).to_have_text("instruction is empty")
    # Beside the field: below the instruction, above the next field, and tied to it for
    # screen readers.
    assert _box(instruction)["y"] < _box(error)["y"] < _box(answer)["y"]
    expect(instruction).to_have_attribute("aria-describedby", "instruction-count instruction-error")
    expect(instruction).to_be_focused()
    expect(answer).to_have_value("An answer to nothing.")
    screenshot(page, "write-error")

    # Typing 8,001 characters key by key is slow; a paste is the realistic way to get there.
    too_long = "x" * (services.MAX_INSTRUCTION_CHARS + 1)
    instruction.fill(too_long)
    counter = page.locator("#instruction-count")
    expect(counter).to_have_text("8001 / 8000 characters")
    expect(counter).to_have_class("count over")
    with page.expect_response(lambda r: r.url.endswith("/write")) as response:
        page.get_by_role("button", name="Save demonstration").click()
    assert response.value.status == 400
    expect(page.locator("#instruction-error")).to_have_text(
        "instruction is 8,001 characters long; the limit is 8,000"
    )
    expect(instruction).to_have_value(too_long)
    expect(answer).to_have_value("An answer to nothing.")
    assert not Prompt.objects.exists()
    assert not Response.objects.exists()


def test_it_logs_in_reaches_the_guidelines_in_one_click_and_logs_out(
    browser_page: Page, live_server, alice: User, project: Project
) -> None:
    page = browser_page
    log_in(page, username="alice", password="not the password")
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page.get_by_label("Username")).to_have_value("alice")
    screenshot(page, "login-error")

    log_in(page, username="alice", password=PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    page.get_by_role("link", name="Guidelines").click()
    expect(page.get_by_role("heading", name=f"Guidelines: {project.name}")).to_be_visible()
    expect(page.locator("article strong")).to_have_text("more helpful")
    screenshot(page, "guidelines")

    log_out(page)
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.goto(_compare_url(project))
    expect(page).to_have_url(f"{live_server.url}/login/?next={_compare_url(project)}")


# --- Plumbing --------------------------------------------------------------------------------


def test_it_skips_without_chromium_unless_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("FLYWHEEL_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium is missing"):
        browser.require_chromium()
    monkeypatch.setenv("FLYWHEEL_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="FLYWHEEL_REQUIRE_BROWSER is set"):
        browser.require_chromium()
