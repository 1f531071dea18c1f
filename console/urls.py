from django.urls import path

from console import views

P = "p/<int:project_id>/"

urlpatterns = [
    path("", views.index, name="console-index"),
    path(P, views.overview, name="console-overview"),
    # Review queue and items
    path(P + "review", views.review, name="console-review"),
    path(P + "review/<int:decision_id>/decide", views.review_decide, name="console-review-decide"),
    path(P + "review/bulk", views.review_bulk, name="console-review-bulk"),
    path(P + "items/<int:decision_id>", views.item, name="console-item"),
    # Duplicate clusters
    path(P + "clusters", views.clusters, name="console-clusters"),
    path(P + "clusters/<int:decision_id>", views.cluster, name="console-cluster"),
    path(
        P + "clusters/<int:decision_id>/representative",
        views.cluster_representative,
        name="console-cluster-representative",
    ),
    path(P + "clusters/<int:decision_id>/decide", views.cluster_decide, name="console-cluster-decide"),
    # Thresholds
    path(P + "thresholds", views.thresholds, name="console-thresholds"),
    path(P + "thresholds/preview", views.thresholds_preview, name="console-thresholds-preview"),
    path(P + "thresholds/apply", views.thresholds_apply, name="console-thresholds-apply"),
    path(P + "thresholds/restore", views.thresholds_restore, name="console-thresholds-restore"),
    path(P + "progress", views.progress, name="console-progress"),
    # Annotators
    path(P + "annotators", views.annotators, name="console-annotators"),
    path(P + "annotators/<int:user_id>/active", views.annotator_active, name="console-annotator-active"),
    path(P + "annotators/<int:user_id>/exclude", views.annotator_exclude, name="console-annotator-exclude"),
    # Snapshots
    path(P + "snapshots", views.snapshots, name="console-snapshots"),
    path(P + "snapshots/create", views.snapshot_create, name="console-snapshot-create"),
    path(P + "snapshots/compare", views.snapshot_compare, name="console-snapshot-compare"),
    path(P + "snapshots/<int:snapshot_id>/verify", views.snapshot_verify, name="console-snapshot-verify"),
    path(
        P + "snapshots/<int:snapshot_id>/files/<str:filename>",
        views.snapshot_file,
        name="console-snapshot-file",
    ),
    # Models
    path(P + "models", views.models, name="console-models"),
    path(P + "models/<int:version_id>/promote", views.model_promote, name="console-model-promote"),
    path(P + "models/<int:version_id>/rollback", views.model_rollback, name="console-model-rollback"),
    # Pipeline runs
    path(P + "pipeline", views.pipeline, name="console-pipeline"),
    path(P + "pipeline/run", views.pipeline_run_now, name="console-pipeline-run"),
    path(P + "pipeline/<int:run_id>/retry", views.pipeline_retry, name="console-pipeline-retry"),
    # Audit log
    path("audit", views.audit, name="console-audit"),
]
