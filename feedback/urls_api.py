from django.urls import path

from feedback import api

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/import", api.ProjectImportApi.as_view(), name="api-import"),
    path("projects/<int:project_id>/next-task", api.NextTaskApi.as_view(), name="api-next-task"),
    path("projects/<int:project_id>/judgments", api.JudgmentExportApi.as_view(), name="api-judgments"),
    path("projects/<int:project_id>/preferences", api.PreferenceExportApi.as_view(), name="api-preferences"),
    path("projects/<int:project_id>/annotators", api.AnnotatorStatsApi.as_view(), name="api-annotators"),
    path("assignments/<int:assignment_id>/submit", api.SubmitApi.as_view(), name="api-submit"),
    path("assignments/<int:assignment_id>/skip", api.SkipApi.as_view(), name="api-skip"),
]
