from django.urls import path

from workers import api

urlpatterns = [
    path(
        "projects/<int:project_id>/pipeline-runs", api.PipelineRunListApi.as_view(), name="api-pipeline-runs"
    ),
    path(
        "projects/<int:project_id>/pipeline-settings",
        api.PipelineSettingsApi.as_view(),
        name="api-pipeline-settings",
    ),
    path("pipeline-runs/<int:run_id>/retry", api.PipelineRunRetryApi.as_view(), name="api-pipeline-retry"),
]
