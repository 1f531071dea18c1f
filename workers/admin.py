from django.contrib import admin

from workers.models import PipelineSettings
from workers.pipeline import SETTINGS_FIELDS, pipeline_settings_update


@admin.register(PipelineSettings)
class PipelineSettingsAdmin(admin.ModelAdmin):
    """Each project's retraining loop, for admins: when to retrain, how candidates and pairs are
    made, the bases, warm start and training options. The form runs the model's checks (the API
    runs the same ones). Rows are made with their defaults the first time a project's pipeline
    settings are read."""

    list_display = (
        "project",
        "enabled",
        "min_new_items",
        "max_age_hours",
        "selection_policy",
        "reward_warm_start",
        "policy_warm_start",
    )
    list_filter = ("enabled", "selection_policy")
    list_select_related = ("project",)
    readonly_fields = ("project",)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        """Saved through the same service as an API change: checked, saved and audited once."""
        changed = {name: form.cleaned_data[name] for name in form.changed_data if name in SETTINGS_FIELDS}
        pipeline_settings_update(project=obj.project, actor=request.user, changes=changed)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
