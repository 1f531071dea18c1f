"""The curation console: server-rendered pages for curators and admins. Thin: parse, call one
service or selector, render. Model output and user text reach templates as plain strings
(auto-escaped) or through console.highlight, which escapes everything it does not add."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import charts, forms, selectors, services
from console import tasks as console_tasks
from console.highlight import highlight_spans
from curation import services as curation_services
from curation import snapshots as curation_snapshots
from curation.models import CurationDecision, Snapshot, Status
from feedback import metrics as feedback_metrics
from feedback.models import Project
from flywheel.db import is_row_id
from flywheel.errors import DomainError, InvalidInput
from flywheel.models import Role, User
from flywheel.roles import CURATORS, current_user, role_required
from training import services as training_services
from training.models import ModelKind
from workers import pipeline as workers_pipeline
from workers.models import PipelineRun

curator = role_required(*CURATORS)
admin_only = role_required(Role.ADMIN)

# What may be downloaded at all. The snapshots page links the files each snapshot's manifest
# holds: older snapshots lack newer exports (preferences_gold.jsonl).
DOWNLOADABLE = (*curation_snapshots.EXPORT_FILES, "manifest.json")


def _project(project_id: int) -> Project:
    return get_object_or_404(Project, pk=project_id)


def _render(
    request: HttpRequest, template: str, project: Project | None, tab: str, status: int = 200, **context: Any
) -> HttpResponse:
    context.update(project=project, projects=selectors.projects(), tab=tab)
    return render(request, template, context, status=status)


def _reason(request: HttpRequest, default: str) -> str:
    # Not cut short here: the service checks it (length, NUL) and refuses it by name.
    return request.POST.get("reason", "").strip() or default


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- Overview --------------------------------------------------------------------------------


@require_GET
@curator
def index(request: HttpRequest) -> HttpResponse:
    chosen = _int(request.GET.get("project"))
    first = selectors.projects().filter(pk=chosen).first() if chosen else selectors.projects().first()
    if first is not None:
        return redirect("console-overview", project_id=first.pk)
    return _render(request, "console/empty.html", None, "overview")


def _overview_charts(ov: selectors.Overview) -> dict[str, str]:
    labels = [day.strftime("%d %b") for day in ov.days]
    status_items = [
        (label, float(ov.by_status.get(value, 0)))
        for value, label in Status.choices
        if ov.by_status.get(value, 0) or value in (Status.KEPT, Status.REJECTED)
    ]
    out = {
        "inflow": charts.line_chart(
            chart_id="inflow",
            title="Inflow per day",
            labels=labels,
            series=ov.inflow,
            y_label="items",
            max_labels=8,
        ),
        "status": charts.hbar_chart(chart_id="status", title="Items by status", items=status_items),
        "reasons": charts.hbar_chart(
            chart_id="reasons",
            title="Rejected items by reason",
            items=[(r, float(n)) for r, n in ov.reasons[:12]],
        ),
        "alpha": charts.line_chart(
            chart_id="alpha",
            title="Annotator agreement (Krippendorff's alpha) per week",
            labels=[week.strftime("%d %b") for week in ov.weeks],
            series={"alpha": ov.alpha},
            y_label="alpha",
            y_max=1.0,
            max_labels=6,
        ),
    }
    for kind, (version_labels, series) in ov.metrics.items():
        out[f"metrics_{kind}"] = charts.line_chart(
            chart_id=f"metrics-{kind}",
            title=f"{ModelKind(kind).label}: metrics by version",
            labels=version_labels,
            series=series,
            y_min=0.0,
            y_max=1.0,
        )
    # charts.py escapes every piece of text it puts into the SVG.
    return {name: mark_safe(svg) for name, svg in out.items()}  # noqa: S308


@require_GET
@curator
def overview(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    ov = selectors.overview(project=project)
    return _render(request, "console/overview.html", project, "overview", ov=ov, charts=_overview_charts(ov))


# --- Review queue ----------------------------------------------------------------------------


def _queue_response(
    request: HttpRequest,
    project: Project,
    filters: forms.ReviewFilters,
    form: forms.ReviewFilterForm,
    *,
    page: str | int | None,
    current_id: int | None,
    status: int = 200,
    error: str = "",
    notice: str = "",
) -> HttpResponse:
    queue = selectors.review_queue(project=project, filters=filters, page=page, current_id=current_id)
    current = queue.current
    context = {
        "queue": queue,
        "filters": filters,
        "form": form,
        "qs": filters.querystring(),
        "filters_hidden": filters.hidden(),
        "status_label": dict(forms.STATUS_CHOICES).get(filters.status, filters.status),
        "main_filters": forms.MAIN_FILTERS,
        "more_filters_active": any(getattr(filters, name) not in (None, "") for name in forms.MORE_FILTERS),
        "search_note": selectors.SEARCH_NOTE,
        "error": error,
        "notice": notice,
        "current_html": mark_safe(highlight_spans(current.item.text, current.pii or []))  # noqa: S308 - escaped
        if current is not None
        else "",
    }
    if _is_htmx(request):
        context.update(project=project)
        return render(request, "console/_queue.html", context, status=status)
    return _render(request, "console/review.html", project, "review", status=status, **context)


def _int(raw: str | None) -> int | None:
    """A row id from a form or query value, or None for anything that cannot name a row."""
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if is_row_id(value) else None


@require_GET
@curator
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    filters, form = forms.review_filters(request.GET)
    return _queue_response(
        request,
        project,
        filters,
        form,
        page=request.GET.get("page"),
        current_id=_int(request.GET.get("current")),
    )


_ACTIONS = {"keep": Status.KEPT, "reject": Status.REJECTED, "clear": ""}


@require_POST
@curator
def review_decide(request: HttpRequest, project_id: int, decision_id: int) -> HttpResponse:
    project = _project(project_id)
    decision = get_object_or_404(CurationDecision, pk=decision_id, project=project)
    filters, form = forms.review_filters(request.POST)
    action = request.POST.get("action", "")
    back_to_item = request.POST.get("next") == "item"
    try:
        if action not in _ACTIONS:
            raise InvalidInput("action must be keep, reject or clear", field="action")
        following = selectors.next_in_queue(project=project, filters=filters, after_id=decision.pk)
        curation_services.decision_override(
            decision_id=decision.pk,
            actor=current_user(request),
            status=_ACTIONS[action],
            reason=_reason(request, "review queue"),
        )
    except DomainError as exc:
        if back_to_item:
            messages.error(request, exc.message)
            return redirect("console-item", project_id=project.pk, decision_id=decision.pk)
        return _queue_response(
            request,
            project,
            filters,
            form,
            page=None,
            current_id=decision.pk,
            status=exc.status,
            error=exc.message,
        )
    verb = {"keep": "Kept", "reject": "Rejected", "clear": "Cleared the override of"}[action]
    if back_to_item:
        messages.success(request, f"{verb} item {decision.pk}.")
        return redirect("console-item", project_id=project.pk, decision_id=decision.pk)
    return _queue_response(
        request, project, filters, form, page=None, current_id=following, notice=f"{verb} item {decision.pk}."
    )


@require_POST
@curator
def review_bulk(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    filters, form = forms.review_filters(request.POST)
    ids = [i for i in (_int(raw) for raw in request.POST.getlist("ids")) if i is not None]
    action = request.POST.get("action", "")
    try:
        if action not in ("keep", "reject"):
            raise InvalidInput("action must be keep or reject", field="action")
        count = services.decisions_bulk_override(
            project=project,
            decision_ids=ids,
            actor=current_user(request),
            status=_ACTIONS[action],
            reason=_reason(request, "review queue, bulk"),
        )
    except DomainError as exc:
        return _queue_response(
            request,
            project,
            filters,
            form,
            page=request.POST.get("page"),
            current_id=None,
            status=exc.status,
            error=exc.message,
        )
    notice = f"{'Kept' if action == 'keep' else 'Rejected'} {count} item{'s' if count != 1 else ''}."
    return _queue_response(
        request, project, filters, form, page=request.POST.get("page"), current_id=None, notice=notice
    )


@require_GET
@curator
def item(request: HttpRequest, project_id: int, decision_id: int) -> HttpResponse:
    project = _project(project_id)
    decision = selectors.decision_get(project=project, decision_id=decision_id)
    if decision is None:
        raise Http404("No such item in this project")
    detail = selectors.decision_detail(decision=decision)
    return _render(
        request,
        "console/item.html",
        project,
        "review",
        detail=detail,
        d=decision,
        text_html=mark_safe(highlight_spans(detail.text, detail.pii)),  # noqa: S308 - escaped by highlight_spans
    )


# --- Duplicate clusters ----------------------------------------------------------------------


@require_GET
@curator
def clusters(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    kind = request.GET.get("kind", "")
    kind = kind if kind in ("prompt", "response") else ""
    page, reps = selectors.clusters_page(project=project, kind=kind, page=request.GET.get("page"))
    rows = [(reps.get(row["cluster_representative_id"]), row["duplicates"]) for row in page.object_list]
    return _render(
        request,
        "console/clusters.html",
        project,
        "clusters",
        page=page,
        rows=rows,
        kind=kind,
        kind_qs=f"kind={kind}" if kind else "",
    )


@require_GET
@curator
def cluster(request: HttpRequest, project_id: int, decision_id: int) -> HttpResponse:
    project = _project(project_id)
    decision = selectors.decision_get(project=project, decision_id=decision_id)
    if decision is None:
        raise Http404("No such item in this project")
    found = selectors.cluster_detail(project=project, decision=decision)
    members = [
        (m, mark_safe(m.representative_html), mark_safe(m.member_html))  # noqa: S308 - escaped by word_diff
        for m in (found.members if found else [])
    ]
    return _render(
        request, "console/cluster.html", project, "clusters", d=decision, found=found, members=members
    )


@require_POST
@curator
def cluster_representative(request: HttpRequest, project_id: int, decision_id: int) -> HttpResponse:
    project = _project(project_id)
    decision = get_object_or_404(CurationDecision, pk=decision_id, project=project)
    try:
        curation_services.cluster_set_representative(
            decision_id=decision.pk,
            actor=current_user(request),
            reason=_reason(request, "console: cluster review"),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Item {decision.pk} now represents its cluster.")
    return redirect("console-cluster", project_id=project.pk, decision_id=decision.pk)


@require_POST
@curator
def cluster_decide(request: HttpRequest, project_id: int, decision_id: int) -> HttpResponse:
    project = _project(project_id)
    decision = get_object_or_404(CurationDecision, pk=decision_id, project=project)
    action = request.POST.get("action", "")
    try:
        if action not in ("keep", "reject"):
            raise InvalidInput("action must be keep or reject", field="action")
        count = curation_services.cluster_decide(
            decision_id=decision.pk,
            actor=current_user(request),
            status=_ACTIONS[action],
            reason=_reason(request, "console: cluster review"),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("console-cluster", project_id=project.pk, decision_id=decision.pk)
    messages.success(
        request, f"{'Kept' if action == 'keep' else 'Rejected'} all {count} items of the cluster."
    )
    return redirect("console-cluster", project_id=project.pk, decision_id=decision.pk)


# --- Thresholds ------------------------------------------------------------------------------


def _thresholds_page(
    request: HttpRequest,
    project: Project,
    *,
    status: int = 200,
    proposed: forms.ThresholdsInput | None = None,
    error: str = "",
) -> HttpResponse:
    cfg = curation_services.curation_settings(project=project)
    overrides = (
        proposed.rule_overrides if proposed is not None and not proposed.errors else cfg.rule_overrides or {}
    )
    return _render(
        request,
        "console/thresholds.html",
        project,
        "thresholds",
        status=status,
        cfg=cfg,
        fields=forms.threshold_fields(
            overrides, proposed.errors if proposed else None, request.POST if proposed else None
        ),
        near_dup=request.POST.get("near_dup_threshold", cfg.near_dup_threshold)
        if proposed
        else cfg.near_dup_threshold,
        near_dup_error=(proposed.errors.get("near_dup_threshold", "") if proposed else ""),
        revisions=selectors.settings_revisions(project=project)[:10],
        progress=selectors.curation_progress(project=project),
        runs=selectors.last_runs(project=project),
        error=error,
    )


@require_GET
@curator
def thresholds(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    # The preview's duplicate replay takes most of a second at 100,000 items: start it now,
    # while the curator edits, for the threshold in force.
    console_tasks.enqueue_preview_warm(project.pk)
    return _thresholds_page(request, project)


@require_POST
@curator
def thresholds_preview(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    proposed = forms.thresholds_input(request.POST)
    if proposed.errors:
        return render(
            request,
            "console/_preview.html",
            {"project": project, "errors": proposed.errors},
            status=400,
        )
    preview = selectors.thresholds_preview(project=project, proposed=proposed)
    return render(
        request,
        "console/_preview.html",
        {
            "project": project,
            "preview": preview,
            "digest": proposed.digest,
            "progress": selectors.curation_progress(project=project),
            "proposed_hidden": forms.proposed_hidden(request.POST),
        },
    )


@require_POST
@curator
def thresholds_apply(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    proposed = forms.thresholds_input(request.POST)
    if proposed.errors:
        return _thresholds_page(
            request, project, status=400, proposed=proposed, error="Some values are not valid."
        )
    if request.POST.get("preview_digest") != proposed.digest:
        return _thresholds_page(
            request,
            project,
            status=409,
            proposed=proposed,
            error="The values changed after the preview. Preview them again before applying.",
        )
    reason = forms.ReasonForm(request.POST)
    if not reason.is_valid():
        return _thresholds_page(
            request, project, status=400, proposed=proposed, error="Say why, in the reason field."
        )
    try:
        applied = services.thresholds_apply(
            project=project,
            actor=current_user(request),
            rule_overrides=proposed.rule_overrides,
            near_dup_threshold=proposed.near_dup_threshold,
            reason=reason.cleaned_data["reason"],
        )
    except DomainError as exc:
        return _thresholds_page(request, project, status=exc.status, proposed=proposed, error=exc.message)
    messages.success(request, f"Saved. Re-curating {applied.marked} items.")
    return redirect("console-thresholds", project_id=project.pk)


@require_POST
@curator
def thresholds_restore(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    try:
        applied = services.thresholds_restore(
            project=project,
            actor=current_user(request),
            revision_id=_int(request.POST.get("revision")),
            reason=_reason(request, ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Restored the earlier settings. Re-curating {applied.marked} items.")
    return redirect("console-thresholds", project_id=project.pk)


@require_GET
@curator
def progress(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    return render(
        request,
        "console/_progress.html",
        {"project": project, "progress": selectors.curation_progress(project=project)},
    )


# --- Annotators ------------------------------------------------------------------------------


def _annotators_page(
    request: HttpRequest, project: Project, status: int = 200, error: str = ""
) -> HttpResponse:
    return _render(
        request,
        "console/annotators.html",
        project,
        "annotators",
        status=status,
        rows=selectors.annotator_rows(project=project),
        error=error,
        side_alpha=feedback_metrics.POSITION_ALPHA,
        side_min=feedback_metrics.POSITION_MIN_SIDED,
        fast_seconds=selectors.FAST_MEDIAN_SECONDS,
        days=selectors.THROUGHPUT_DAYS,
    )


@require_GET
@curator
def annotators(request: HttpRequest, project_id: int) -> HttpResponse:
    return _annotators_page(request, _project(project_id))


def _annotator_change(request: HttpRequest, project_id: int, user_id: int, field: str) -> HttpResponse:
    project = _project(project_id)
    user = get_object_or_404(User, pk=user_id)
    reason = forms.ReasonForm(request.POST)
    if not reason.is_valid():
        return _annotators_page(
            request, project, status=400, error="Say why in the reason field; the audit log keeps it."
        )
    on = request.POST.get("value") == "1"
    try:
        if field == "active":
            services.annotator_set_active(
                actor=current_user(request), user=user, active=on, reason=reason.cleaned_data["reason"]
            )
            done = f"{'Enabled' if on else 'Disabled'} {user.username}."
        else:
            services.annotator_set_excluded(
                actor=current_user(request), user=user, excluded=on, reason=reason.cleaned_data["reason"]
            )
            where = "excluded from" if on else "included in"
            done = f"{user.username}'s judgments are {where} future snapshots."
    except DomainError as exc:
        return _annotators_page(request, project, status=exc.status, error=exc.message)
    messages.success(request, done)
    return redirect("console-annotators", project_id=project.pk)


@require_POST
@curator
def annotator_active(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    return _annotator_change(request, project_id, user_id, "active")


@require_POST
@curator
def annotator_exclude(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    return _annotator_change(request, project_id, user_id, "exclude")


# --- Snapshots -------------------------------------------------------------------------------


def _snapshots_page(request: HttpRequest, project: Project, status: int = 200, **extra: Any) -> HttpResponse:
    page = selectors.paginate(selectors.snapshots_for(project=project), request.GET.get("page"), per_page=20)
    return _render(
        request,
        "console/snapshots.html",
        project,
        "snapshots",
        status=status,
        page=page,
        all_snapshots=selectors.snapshots_for(project=project).values_list("id", "version")[:200],
        pending=selectors.curation_progress(project=project).pending,
        note_max=curation_snapshots.MAX_NOTE_CHARS,
        **extra,
    )


@require_GET
@curator
def snapshots(request: HttpRequest, project_id: int) -> HttpResponse:
    return _snapshots_page(request, _project(project_id))


@require_POST
@curator
def snapshot_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    note = request.POST.get("note", "").strip()
    try:
        snapshot = curation_snapshots.snapshot_create(project=project, actor=current_user(request), note=note)
    except DomainError as exc:
        # The note comes back in the form, so a refused one is not lost.
        return _snapshots_page(request, project, status=exc.status, error=exc.message, note=note)
    messages.success(request, f"Created snapshot v{snapshot.version}.")
    return redirect("console-snapshots", project_id=project.pk)


def _snapshot(project: Project, snapshot_id: int | None) -> Snapshot:
    return get_object_or_404(Snapshot, pk=snapshot_id, project=project)


@require_GET
@curator
def snapshot_compare(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    a_id, b_id = _int(request.GET.get("a")), _int(request.GET.get("b"))
    diff = None
    if a_id is not None and b_id is not None:
        diff = selectors.snapshot_compare(a=_snapshot(project, a_id), b=_snapshot(project, b_id))
    return _snapshots_page(request, project, diff=diff, a_id=a_id, b_id=b_id)


@require_POST
@curator
def snapshot_verify(request: HttpRequest, project_id: int, snapshot_id: int) -> HttpResponse:
    project = _project(project_id)
    snapshot = _snapshot(project, snapshot_id)
    problems = curation_snapshots.snapshot_verify(snapshot=snapshot)
    if problems:
        messages.error(request, f"Snapshot v{snapshot.version} failed verification: {'; '.join(problems)}.")
    else:
        messages.success(request, f"Snapshot v{snapshot.version} is intact: every hash matches.")
    return redirect("console-snapshots", project_id=project.pk)


@require_GET
@curator
def snapshot_file(request: HttpRequest, project_id: int, snapshot_id: int, filename: str) -> HttpResponse:
    project = _project(project_id)
    snapshot = _snapshot(project, snapshot_id)
    if filename not in DOWNLOADABLE:
        raise Http404("No such export file")
    directory = Path(snapshot.directory).resolve()
    path = (directory / filename).resolve()
    # The name is from a fixed list, but the directory comes from the database: refuse
    # anything a link or a crafted row would lead outside the snapshot's own folder.
    if not path.is_relative_to(directory) or not path.is_file():
        raise Http404("The export file is missing")
    response = FileResponse(
        path.open("rb"), as_attachment=True, filename=f"{project.pk}-v{snapshot.version}-{filename}"
    )
    response["Content-Type"] = "application/json" if filename.endswith(".json") else "application/x-ndjson"
    # A streaming response; role_required's signature names the common base loosely.
    return cast(HttpResponse, response)


# --- Models ----------------------------------------------------------------------------------


@require_GET
@curator
def models(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    return _render(
        request,
        "console/models.html",
        project,
        "models",
        sections=[
            (kind, label, training_services.active_deployment(project=project, kind=kind), versions)
            for (kind, label), versions in zip(
                ModelKind.choices, selectors.model_rows(project=project).values(), strict=True
            )
        ],
        deployments=selectors.deployments_for(project=project),
        is_admin=current_user(request).role == Role.ADMIN,
    )


def _confirm(request: HttpRequest, project_id: int, version_id: int, action: str) -> HttpResponse:
    project = _project(project_id)
    version = selectors.version_get(version_id=version_id)
    if version is None or version.project_id != project.pk:
        raise Http404("No such model version in this project")
    form = forms.ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                if action == "promote":
                    training_services.model_force_promote(
                        version=version, actor=current_user(request), reason=form.cleaned_data["reason"]
                    )
                else:
                    training_services.model_rollback(
                        project=project,
                        kind=version.kind,
                        to_version_id=version.pk,
                        actor=current_user(request),
                        reason=form.cleaned_data["reason"],
                    )
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                verb = "Promoted" if action == "promote" else "Rolled back to"
                messages.success(request, f"{verb} {version.get_kind_display()} v{version.number}.")
                return redirect(reverse("console-models", kwargs={"project_id": project.pk}))
        else:
            status = 400
    return _render(
        request,
        "console/confirm.html",
        project,
        "models",
        status=status,
        version=version,
        action=action,
        form=form,
        current=training_services.active_deployment(project=project, kind=version.kind),
    )


@require_http_methods(["GET", "POST"])
@admin_only
def model_promote(request: HttpRequest, project_id: int, version_id: int) -> HttpResponse:
    return _confirm(request, project_id, version_id, "promote")


@require_http_methods(["GET", "POST"])
@curator
def model_rollback(request: HttpRequest, project_id: int, version_id: int) -> HttpResponse:
    return _confirm(request, project_id, version_id, "rollback")


# --- Pipeline runs ---------------------------------------------------------------------------


@require_GET
@curator
def pipeline(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    page, rows = selectors.pipeline_runs_page(project=project, page=request.GET.get("page"))
    return _render(
        request,
        "console/pipeline.html",
        project,
        "pipeline",
        page=page,
        rows=rows,
        active=selectors.pipeline_run_active(project=project),
        loop=workers_pipeline.pipeline_settings(project=project),
        is_admin=current_user(request).role == Role.ADMIN,
    )


@require_POST
@curator
def pipeline_run_now(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(project_id)
    try:
        run = workers_pipeline.pipeline_run_start(
            project=project, trigger="console", actor=current_user(request)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Started pipeline run {run.pk}.")
    return redirect("console-pipeline", project_id=project.pk)


@require_POST
@curator
def pipeline_retry(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = _project(project_id)
    failed = get_object_or_404(PipelineRun, pk=run_id, project=project)
    try:
        run = workers_pipeline.pipeline_run_retry(run=failed, actor=current_user(request))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Started pipeline run {run.pk}, a retry of run {failed.pk}.")
    return redirect("console-pipeline", project_id=project.pk)


# --- Audit log -------------------------------------------------------------------------------


@require_GET
@curator
def audit(request: HttpRequest) -> HttpResponse:
    form = forms.AuditFilterForm(request.GET)
    form.is_valid()
    data = {k: v for k, v in form.cleaned_data.items() if k not in form.errors and v not in (None, "")}
    entries = selectors.audit_entries(**data)
    actions, types = selectors.audit_choices()
    query = request.GET.copy()
    query.pop("page", None)
    return _render(
        request,
        "console/audit.html",
        selectors.projects().first(),
        "audit",
        form=form,
        page=selectors.audit_page(entries, request.GET.get("page")),
        actions=actions,
        types=types,
        qs=query.urlencode(),
    )
