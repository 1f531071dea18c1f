from django.contrib import admin

from console.models import CurationSettingsRevision


@admin.register(CurationSettingsRevision)
class CurationSettingsRevisionAdmin(admin.ModelAdmin):
    """Raw revisions, read-only: they are written by console.services.thresholds_apply only."""

    list_display = ("project", "created_at", "replaced_by", "near_dup_threshold", "reason")
    list_filter = ("project",)
    readonly_fields = (
        "project",
        "rule_overrides",
        "near_dup_threshold",
        "replaced_by",
        "reason",
        "created_at",
    )

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
