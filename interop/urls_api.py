from django.urls import path

from interop import api

# "format_name", not "format": DRF reads a `format` URL argument as a format suffix (.json)
# and answers 404 for any it has no renderer for.
urlpatterns = [
    path(
        "projects/<int:project_id>/interop/<str:format_name>/import",
        api.InteropImportApi.as_view(),
        name="api-interop-import",
    ),
    path(
        "projects/<int:project_id>/interop/<str:format_name>/export",
        api.InteropExportApi.as_view(),
        name="api-interop-export",
    ),
    path(
        "projects/<int:project_id>/label-studio",
        api.LabelStudioLinkListApi.as_view(),
        name="api-label-studio-links",
    ),
    path(
        "projects/<int:project_id>/label-studio/sync",
        api.LabelStudioSyncApi.as_view(),
        name="api-label-studio-sync",
    ),
]
