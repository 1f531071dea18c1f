from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.models import Project
from flywheel.errors import DomainError
from workers import pipeline
from workers.models import ACTIVE_RUN_STATUSES, PipelineRun


class Command(BaseCommand):
    help = "Start a pipeline run now (snapshot, retrain, gate, redeploy, generate, pair)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True)
        parser.add_argument("--if-due", action="store_true", help="only if the retrain trigger fired")
        parser.add_argument("--wait", action="store_true", help="wait for the run and print its steps")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}")
        if options["if_due"]:
            due, reason = pipeline.retrain_due(project=project)
            if not due:
                self.stdout.write(f"Not due: {reason}.")
                return
        try:
            run = pipeline.pipeline_run_start(project=project, trigger="cli")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Started pipeline run {run.pk}; a worker will pick it up.")
        if not options["wait"]:
            return
        seen = ""
        while True:
            run = PipelineRun.objects.get(pk=run.pk)
            if run.log != seen:
                self.stdout.write(run.log[len(seen) :], ending="")
                seen = run.log
            if run.status not in ACTIVE_RUN_STATUSES:
                break
            time.sleep(2)
        if run.status != "succeeded":
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
