from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from curation import quality, services
from curation.models import CurationDecision, Status
from curation.selectors import curation_summary
from feedback.models import Project


class Command(BaseCommand):
    help = (
        "Curate a project's pending items now (or, with --recurate, every item again), with a progress bar."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--project", type=int, help="project id")
        target.add_argument("--all", action="store_true", help="every active project")
        parser.add_argument(
            "--recurate", action="store_true", help="send every item through the pipeline again"
        )
        parser.add_argument("--batch-size", type=int, default=services.BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["all"]:
            projects = list(Project.objects.filter(is_active=True))
        else:
            project = Project.objects.filter(pk=options["project"]).first()
            if project is None:
                raise CommandError(f"No project with id {options['project']}")
            projects = [project]
        for project in projects:
            self._curate(project, recurate=options["recurate"], batch_size=options["batch_size"])

    def _curate(self, project: Project, *, recurate: bool, batch_size: int) -> None:
        if recurate:
            services.project_recurate_mark(project=project, actor=None)
        services.decisions_ensure(project_id=project.pk)
        pending = CurationDecision.objects.filter(project=project, status=Status.PENDING).count()
        with tqdm(total=pending, desc=f"Curating {project.name}", unit="item", disable=pending == 0) as bar:
            run = services.project_curate(
                project_id=project.pk,
                trigger="recurate" if recurate else "manual",
                batch_size=batch_size,
                progress=bar.update,
            )
        if run is not None and run.errors:
            raise CommandError(f"curation stopped with errors: {run.errors}")
        summary = curation_summary(project=project)
        self.stdout.write(
            f"\n{project.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(summary["by_status"].items()))
        )
        for reason, count in sorted(summary["reasons"].items(), key=lambda kv: -kv[1]):
            self.stdout.write(f"  {count:>5}  {reason}")
        self.stdout.write(f"  quality classifier: {quality.classifier_status(project=project)}")
