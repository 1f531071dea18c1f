from django.contrib import admin

from interop.models import ExternalAnnotator, LabelStudioLink


@admin.register(LabelStudioLink)
class LabelStudioLinkAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "kind",
        "url",
        "ls_project_id",
        "enabled",
        "last_synced_at",
        "last_error",
    )
    list_filter = ("kind", "enabled")
    # The token is written through the API or `manage.py interop label-studio link`, never shown.
    exclude = ("token",)
    readonly_fields = ("claimed_at", "last_attempt_at", "last_synced_at", "last_error", "last_report")


@admin.register(ExternalAnnotator)
class ExternalAnnotatorAdmin(admin.ModelAdmin):
    list_display = ("id", "namespace", "key", "user", "created_at")
    list_filter = ("namespace",)
    search_fields = ("key", "user__username")
    raw_id_fields = ("user",)
