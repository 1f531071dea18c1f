"""manage.py interop: move a project's data in and out in other formats, and sync Label Studio.

    manage.py interop import --format hh --project 1 train.jsonl
    manage.py interop export --format trl-preference --project 1 prefs.jsonl
    manage.py interop export --format arena --project 1 --to parquet battles.parquet
    manage.py interop label-studio link --project 1 --url http://localhost:8080 --token TOKEN
    manage.py interop label-studio sync --project 1

docs/interop.md has every option, with examples.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flywheel.errors import DomainError
from interop import selectors, services
from interop.formats.hf import TARGETS
from interop.formats.registry import FORMATS
from interop.models import LinkKind

SOURCES = ("jsonl", "parquet", "hf-disk")


def _lines(path: str, source: str) -> Iterator[bytes | str]:
    if source != "jsonl":
        from interop.formats.hf import read_rows

        yield from read_rows(Path(path), source=source)
        return
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        yield from handle


class Command(BaseCommand):
    help = "Import and export TRL, Anthropic HH, Open Assistant and Chatbot Arena data; sync Label Studio."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a file into a project")
        imp.add_argument("--format", required=True, choices=FORMATS)
        imp.add_argument("--project", type=int, required=True)
        imp.add_argument(
            "--from", dest="source", choices=SOURCES, default="jsonl", help="file kind (default jsonl)"
        )
        imp.add_argument("--source-name", default="", help="dataset name judgments are attributed to")
        imp.add_argument("file", help="the file (a folder for --from hf-disk); - reads JSON Lines from stdin")

        exp = sub.add_parser("export", help="export a project")
        exp.add_argument("--format", required=True, choices=FORMATS)
        exp.add_argument("--project", type=int, required=True)
        exp.add_argument(
            "--style",
            default=None,
            help="trl-preference: standard|conversational; trl-sft: messages|prompt-completion",
        )
        exp.add_argument(
            "--to", choices=TARGETS, default="jsonl", help="jsonl (default), hf-disk (a folder) or parquet"
        )
        exp.add_argument("out", help="where to write; - writes JSON Lines to stdout")

        ls = sub.add_parser("label-studio", help="Label Studio links and sync")
        ls_sub = ls.add_subparsers(dest="ls_action", required=True)
        link = ls_sub.add_parser("link", help="create or change a project's link")
        link.add_argument("--project", type=int, required=True)
        link.add_argument("--kind", choices=LinkKind.values, default=LinkKind.COMPARISON)
        link.add_argument("--url", required=True)
        link.add_argument("--token", required=True)
        link.add_argument("--ls-project", type=int, default=None, help="an existing Label Studio project id")
        link.add_argument("--new-project", action="store_true", help="forget the linked project; create anew")
        link.add_argument("--disable", action="store_true", help="keep the link but stop syncing it")
        sync = ls_sub.add_parser("sync", help="sync now (pull annotations, push new tasks)")
        sync.add_argument("--project", type=int, required=True)
        status = ls_sub.add_parser("status", help="show a project's links and their last sync")
        status.add_argument("--project", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = selectors.project_get(project_id=options["project"])
            if options["action"] == "import":
                self._import(project, options)
            elif options["action"] == "export":
                self._export(project, options)
            elif options["ls_action"] == "link":
                self._link(project, options)
            elif options["ls_action"] == "sync":
                self._sync(project)
            else:
                for found in selectors.label_studio_links(project=project):
                    self.stdout.write(json.dumps(selectors.label_studio_link_as_dict(found), indent=2))
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    def _import(self, project: Any, options: dict[str, Any]) -> None:
        report = services.interop_import(
            project=project,
            format=options["format"],
            lines=_lines(options["file"], options["source"]),
            actor=None,
            source_name=options["source_name"],
        )
        summary = report.as_dict()
        created, updated = summary["created"] or "nothing", summary["updated"] or "nothing"
        self.stdout.write(
            f"{summary['lines']} lines, {summary['records']} records: created {created}, updated {updated}, "
            f"{summary['existing']} already there, {summary['error_count']} errors"
        )
        for error in summary["errors"]:
            self.stderr.write(f"  line {error['line']}: {error['reason']}")
        if summary["error_count"] > len(summary["errors"]):
            self.stderr.write(f"  ... and {summary['error_count'] - len(summary['errors'])} more")

    def _export(self, project: Any, options: dict[str, Any]) -> None:
        fmt, style, to, out = options["format"], options["style"], options["to"], options["out"]
        if to == "jsonl":
            lines = selectors.export_lines(project=project, format=fmt, style=style)
            count = 0
            if out == "-":
                for line in lines:
                    self.stdout.write(line, ending="")
                return
            with open(out, "w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line)
                    count += 1
        else:
            from interop.formats.hf import write_dataset

            lines = selectors.export_lines(project=project, format=fmt, style=style, typed=True)
            schema = selectors.export_schema(format=fmt, style=style)
            count = write_dataset(lines, Path(out), to=to, schema=schema)
        self.stdout.write(f"{count} rows of {fmt} written to {out}")

    def _link(self, project: Any, options: dict[str, Any]) -> None:
        link, created = services.label_studio_link_save(
            project=project,
            kind=options["kind"],
            url=options["url"],
            token=options["token"],
            actor=None,
            ls_project_id=options["ls_project"],
            new_project=options["new_project"],
            enabled=not options["disable"],
        )
        self.stdout.write(f"{'Created' if created else 'Updated'} link {link.pk}: {link.kind} -> {link.url}")

    def _sync(self, project: Any) -> None:
        from interop import label_studio

        link_ids = selectors.label_studio_link_ids(project=project)
        if not link_ids:
            raise CommandError(
                "This project has no enabled Label Studio link; add one with `label-studio link`"
            )
        failed = []
        for link_id in link_ids:
            try:
                report = label_studio.label_studio_sync(link_id=link_id, trigger="command")
            except DomainError as exc:
                self.stderr.write(f"link {link_id}: {exc.message}")
                failed.append(link_id)
                continue
            self.stdout.write(f"link {link_id}: {json.dumps(report.as_dict())}")
        if failed:
            raise CommandError(f"{len(failed)} of {len(link_ids)} links failed to sync")
