from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_lease_function(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    from feedback.services import lease_function_install

    lease_function_install(using)


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Feedback collection"

    def ready(self) -> None:
        # Next-task's one-round-trip function is written from the code's SQL, so it follows the
        # code rather than a migration: created (or replaced) after every migrate.
        post_migrate.connect(_install_lease_function, sender=self)
