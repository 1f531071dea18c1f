"""Annotator web UI: home, guidelines, compare, write. Thin: parse, call a service, render."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from feedback import selectors, services
from feedback.models import Assignment, Choice, Project, Side, Strength
from flywheel.errors import DomainError
from flywheel.roles import current_user


def _form_text(request: HttpRequest, name: str) -> str:
    """A textarea's value as typed. Browsers submit a form's line breaks as CRLF (the HTML spec
    says so); without this every demonstration written in the UI would train on stray "\\r"."""
    return request.POST.get(name, "").replace("\r\n", "\n")


def _project(request: HttpRequest, project_id: int) -> Project:
    return get_object_or_404(Project, pk=project_id, is_active=True)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = [
        (project, selectors.annotator_progress(project=project, annotator=current_user(request)))
        for project in selectors.projects_for(user=current_user(request))
    ]
    return render(request, "feedback/home.html", {"projects": projects})


@login_required
def guidelines(request: HttpRequest, project_id: int) -> HttpResponse:
    return render(request, "feedback/guidelines.html", {"project": _project(request, project_id)})


def _task_context(
    request: HttpRequest, project: Project, assignment: Assignment | None, **extra: object
) -> dict[str, object]:
    context: dict[str, object] = {"project": project, "assignment": assignment, **extra}
    if assignment is not None:
        task = assignment.task
        left, right = (
            (task.response_a, task.response_b)
            if assignment.left_side == Side.A
            else (task.response_b, task.response_a)
        )
        context.update(
            task=task,
            left=left,
            right=right,
            choices=[
                ("1", assignment.left_side, "A is better"),
                ("2", Side.B if assignment.left_side == Side.A else Side.A, "B is better"),
                ("3", Choice.TIE, "Tie"),
                ("4", Choice.BOTH_BAD, "Both bad"),
            ],
            strengths=Strength.choices,
            # One key per rendered form: a double click or a retried request submits once.
            idempotency_key=extra.get("idempotency_key") or uuid.uuid4().hex,
            show_suggestion=project.show_suggestions and task.suggested_preference is not None,
            suggestion_left=(
                None
                if task.suggested_preference is None
                else task.suggested_preference
                if assignment.left_side == Side.A
                else 1 - task.suggested_preference
            ),
        )
    context["progress"] = selectors.annotator_progress(project=project, annotator=current_user(request))
    return context


def _render_task(
    request: HttpRequest, project: Project, assignment: Assignment | None, status: int = 200, **extra: object
) -> HttpResponse:
    template = "feedback/_task.html" if request.headers.get("HX-Request") else "feedback/compare.html"
    return render(request, template, _task_context(request, project, assignment, **extra), status=status)


@login_required
def compare(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    try:
        assignment = services.assignment_next(project=project, annotator=current_user(request))
    except DomainError as exc:
        return render(
            request,
            "feedback/compare.html",
            {"project": project, "page_error": exc.message},
            status=exc.status,
        )
    # The lease comes with its task's texts loaded.
    return _render_task(request, project, assignment)


def _time_spent(raw: str | None) -> int | None:
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if 0 <= value <= 86_400_000 else None


@require_POST
@login_required
def compare_submit(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = _project(request, project_id)
    try:
        # The service reads the lease itself, under its lock, and refuses a foreign one.
        services.comparison_submit(
            assignment=assignment_id,
            annotator=current_user(request),
            choice=request.POST.get("choice", ""),
            strength=request.POST.get("strength", ""),
            rationale=_form_text(request, "rationale"),
            time_spent_ms=_time_spent(request.POST.get("time_spent_ms")),
            idempotency_key=request.POST.get("idempotency_key", ""),
        )
    except DomainError as exc:
        # Re-render the same task with the error beside the field and the rationale kept,
        # so nothing the annotator typed is lost.
        current = (
            Assignment.objects.filter(pk=assignment_id, annotator=current_user(request))
            .select_related("task__prompt", "task__response_a", "task__response_b")
            .first()
        )
        return _render_task(
            request,
            project,
            current,
            status=exc.status,
            error=exc.message,
            error_field=exc.field or "choice",
            error_code=exc.code,
            # A 409 means this lease can never take the judgment (task full, already judged or
            # skipped): the page offers the next task instead of a retry.
            task_closed=exc.status == 409,
            rationale=_form_text(request, "rationale"),
            strength=request.POST.get("strength", ""),
            idempotency_key=request.POST.get("idempotency_key", ""),
        )
    return compare(request, project_id)


@require_POST
@login_required
def compare_skip(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = _project(request, project_id)
    try:
        assignment = services.assignment_get(assignment_id=assignment_id, annotator=current_user(request))
        services.assignment_skip(
            assignment=assignment, annotator=current_user(request), reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        current = (
            Assignment.objects.filter(pk=assignment_id, annotator=current_user(request))
            .select_related("task__prompt", "task__response_a", "task__response_b")
            .first()
        )
        return _render_task(
            request,
            project,
            current,
            status=exc.status,
            error=exc.message,
            error_field="reason",
            task_closed=exc.status == 409,
            rationale=_form_text(request, "rationale"),
        )
    return compare(request, project_id)


@login_required
def write(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    context: dict[str, object] = {
        "project": project,
        "max_instruction": services.MAX_INSTRUCTION_CHARS,
        "max_response": services.settings_max_chars(),
        "instruction": "",
        "response": "",
    }
    status = 200
    if request.method == "POST":
        instruction = _form_text(request, "instruction")
        response = _form_text(request, "response")
        try:
            services.demonstration_submit(
                project=project, author=current_user(request), instruction=instruction, response=response
            )
        except DomainError as exc:
            context.update(
                instruction=instruction, response=response, error=exc.message, error_field=exc.field
            )
            status = exc.status
        else:
            messages.success(request, "Saved. Thank you. Write another, or go back to comparing.")
            return redirect("write", project_id=project.pk)
    return render(request, "feedback/write.html", context, status=status)
