from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation import snapshots
from curation.models import Snapshot
from feedback.models import Project
from flywheel.errors import DomainError


class Command(BaseCommand):
    help = "Create or verify dataset snapshots."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="freeze a project's kept data")
        create.add_argument("--project", type=int, required=True)
        create.add_argument("--note", default="")
        verify = sub.add_parser("verify", help="recompute a snapshot's hashes")
        verify.add_argument("snapshot_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            project = Project.objects.filter(pk=options["project"]).first()
            if project is None:
                raise CommandError(f"No project with id {options['project']}")
            try:
                snapshot = snapshots.snapshot_create(project=project, actor=None, note=options["note"])
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Snapshot {snapshot.pk} (v{snapshot.version}) {snapshot.content_hash}")
            for name, count in snapshot.counts.items():
                self.stdout.write(f"  {count:>6}  {name}")
            self.stdout.write(f"  files in {snapshot.directory}")
            return
        found = Snapshot.objects.filter(pk=options["snapshot_id"]).first()
        if found is None:
            raise CommandError(f"No snapshot with id {options['snapshot_id']}")
        problems = snapshots.snapshot_verify(snapshot=found)
        if problems:
            raise CommandError("snapshot is NOT intact: " + "; ".join(problems))
        self.stdout.write(f"Snapshot {found.pk} is intact ({found.content_hash}).")
