from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from curation.tasks import enqueue_curation
        from flywheel.hooks import on_items_created

        on_items_created(enqueue_curation)
