from django.core.management.base import BaseCommand

from workers.services import schedule_sync


class Command(BaseCommand):
    help = "Store the periodic jobs of workers/schedule.py in django-celery-beat (admin-editable)."

    def handle(self, *args: object, **options: object) -> None:
        result = schedule_sync()
        self.stdout.write(f"Periodic jobs: {result['created']} created, {result['kept']} kept as configured.")
