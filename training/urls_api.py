from django.urls import path

from training import api

urlpatterns = [
    path("projects/<int:project_id>/models/", api.ModelListApi.as_view(), name="api-models"),
    path("projects/<int:project_id>/models/policy/generate", api.GenerateApi.as_view(), name="api-generate"),
    path("projects/<int:project_id>/models/reward/score", api.ScoreApi.as_view(), name="api-score"),
    path(
        "projects/<int:project_id>/models/<str:kind>/rollback", api.RollbackApi.as_view(), name="api-rollback"
    ),
    path("models/<int:version_id>/force-promote", api.ForcePromoteApi.as_view(), name="api-force-promote"),
    path("models/<int:version_id>/lineage", api.LineageApi.as_view(), name="api-lineage"),
    path("judgments/<int:judgment_id>/models", api.JudgmentModelsApi.as_view(), name="api-judgment-models"),
]
