"""`manage.py seed_demo`: the demo project and the demo cast, for a local `make run`.

`make run` calls it on every start, so it is idempotent: rows are found by name or external
id and only what is missing is created. Existing rows are left exactly as they are, even
if the demo data has changed since, because an annotator may already have judged them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from feedback import demo_data, services
from feedback.models import ComparisonTask, Project, Prompt, PromptSource, Response, ResponseSource
from flywheel.models import Role, User
from flywheel.services import user_ensure

# Known to everyone who reads this file, which is why the command refuses to run in production.
DEMO_PASSWORD = "flywheel-demo"  # noqa: S105

DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("dave", Role.ADMIN),
    ("carol", Role.CURATOR),
    ("alice", Role.ANNOTATOR),
    ("bob", Role.ANNOTATOR),
)


class Command(BaseCommand):
    help = "Create the demo project, its prompts, responses and comparisons, and the demo users."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo creates users with a published password and is refused when "
                "DJANGO_ENV=production. Create real accounts with `manage.py createsuperuser`."
            )
        with transaction.atomic():
            users = [
                user_ensure(username=username, role=role, password=DEMO_PASSWORD)
                for username, role in DEMO_USERS
            ]
            project, project_created = self._project()
            created, existing = self._content(project)
        self._report(project, project_created, created, existing)
        self._print_logins(users)

    def _project(self) -> tuple[Project, bool]:
        project = Project.objects.filter(name=demo_data.PROJECT_NAME).first()
        if project is not None:
            return project, False
        project = services.project_create(
            actor=None,
            name=demo_data.PROJECT_NAME,
            guidelines=demo_data.GUIDELINES,
            overlap_k=3,
            gold_rate=0.1,
        )
        return project, True

    def _content(self, project: Project) -> tuple[Counter[str], Counter[str]]:
        created: Counter[str] = Counter()
        existing: Counter[str] = Counter()

        def tally(kind: str, was_created: bool) -> None:
            (created if was_created else existing)[kind] += 1

        # One query per kind for what is already there, rather than one per row: the command
        # runs on every `make run`, where everything usually exists.
        known_prompts = {p.external_id: p for p in Prompt.objects.filter(project=project)}
        known_responses = {r.external_id: r for r in Response.objects.filter(project=project)}
        tasks = ComparisonTask.objects.filter(project=project)
        known_tasks = set(tasks.values_list("external_id", flat=True))
        for item in demo_data.PROMPTS:
            prompt_id = demo_data.prompt_external_id(item)
            prompt = known_prompts.get(prompt_id)
            tally("prompts", prompt is None)
            if prompt is None:
                prompt = services.prompt_create(
                    project=project, text=item.text, source=PromptSource.SEED, external_id=prompt_id
                )
            responses: list[Response] = []
            for index, text in enumerate(item.responses):
                external_id = demo_data.response_external_id(item, index)
                response = known_responses.get(external_id)
                tally("responses", response is None)
                if response is None:
                    response = services.response_create(
                        prompt=prompt,
                        text=text,
                        source=ResponseSource.SEED,
                        model_name=f"demo-model-{'ab'[index % 2]}",
                        external_id=external_id,
                    )
                responses.append(response)
            for a, b in demo_data.task_pairs(item):
                external_id = demo_data.task_external_id(item, a, b)
                found = external_id in known_tasks
                tally("comparison tasks", not found)
                if found:
                    continue
                is_gold = bool(item.gold) and (a, b) == (0, 1)
                services.comparison_task_create(
                    project=project,
                    prompt=prompt,
                    response_a=responses[a],
                    response_b=responses[b],
                    is_gold=is_gold,
                    gold_answer=item.gold if is_gold else "",
                    external_id=external_id,
                )
        return created, existing

    def _report(
        self, project: Project, project_created: bool, created: Counter[str], existing: Counter[str]
    ) -> None:
        state = "created" if project_created else "already there"
        self.stdout.write(f"Demo project {project.name!r} (id {project.pk}): {state}.")
        for kind in ("prompts", "responses", "comparison tasks"):
            self.stdout.write(f"  {kind:<17} {created[kind]:>3} created, {existing[kind]:>3} already there")
        gold = ComparisonTask.objects.filter(project=project, is_gold=True).count()
        self.stdout.write(f"  gold tasks        {gold:>3} in the project")
        planted = len(demo_data.planted_items())
        self.stdout.write(f"  {planted} items are planted duplicates or junk for curation to catch.")

    def _print_logins(self, users: list[tuple[User, bool]]) -> None:
        self.stdout.write("")
        self.stdout.write("Demo logins (local use only):")
        self.stdout.write(f"  {'user':<8} {'role':<10} {'password':<15} account")
        for user, was_created in users:
            state = "created" if was_created else "already there"
            self.stdout.write(f"  {user.username:<8} {user.role:<10} {DEMO_PASSWORD:<15} {state}")
        if not all(was_created for _, was_created in users):
            # user_ensure never touches an existing account, so a changed password stays changed.
            self.stdout.write("  Accounts that were already there keep their password and role.")
