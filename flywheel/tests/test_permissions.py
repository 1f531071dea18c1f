"""Who may do what: every route of the project against every role.

The table below is the permission model written out. The first test walks the URL resolver,
so a new route fails the suite until someone decides, here, who may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.http import QueryDict
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from console.forms import thresholds_input
from curation.models import CurationDecision, ItemKind, Status
from curation.snapshots import snapshot_create
from feedback import services
from feedback.models import AssignmentState, Judgment
from feedback.tests.factories import PASSWORD, make_project, make_task, make_user
from flywheel.models import Role, User
from training.models import ModelKind, ModelVersion
from workers.models import PipelineRun, RunStatus

ROLES = ("anonymous", "annotator", "curator", "admin")

# Expected outcomes besides a plain status code: a redirect to one of the two login pages.
LOGIN = "redirect to /login/"
ADMIN_LOGIN = "redirect to /admin/login/"


@dataclass(frozen=True)
class Rule:
    method: str
    # One outcome per role, in the order of ROLES.
    expect: tuple[int | str, int | str, int | str, int | str]
    # A callable gets the ids of the test's rows, for bodies that must name one.
    body: dict[str, Any] | bytes | Callable[[dict[str, Any]], dict[str, Any]] | None = None
    content_type: str = ""
    # Where the request comes from; the test client's default is the loopback address.
    remote_addr: str = "127.0.0.1"


UI = (LOGIN, 200, 200, 200)
CURATOR_API = (401, 403, 200, 200)
# The curation console: curators and admins only, annotators refused on every page.
CONSOLE = (LOGIN, 403, 200, 200)
CONSOLE_POST = (LOGIN, 403, 302, 302)
THRESHOLDS = {"near_dup_threshold": "0.8", "prompt.min_words": "3"}


def _thresholds_apply_body(ids: dict[str, Any]) -> dict[str, Any]:
    data = QueryDict(mutable=True)
    data.update(THRESHOLDS)
    digest = thresholds_input(data).digest
    return {**THRESHOLDS, "preview_digest": digest, "reason": "stricter prompts"}


IMPORT_BODY = b'{"type": "prompt", "external_id": "perm-1", "text": "Say hello."}\n'
HH_BODY = (
    b'{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hi.", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go."}\n'
)

# The annotator in every row is alice, who holds the assignment the table acts on; curator and
# admin act on her assignment too, and are refused: an assignment belongs to one person.
TABLE: dict[str, list[Rule]] = {
    # --- flywheel/urls.py ---
    "healthz": [Rule("GET", (200, 200, 200, 200))],
    # Prometheus scrapes from the private network without credentials; from anywhere else it
    # needs FLYWHEEL_METRICS_TOKEN (flywheel/tests/test_metrics.py), or a signed-in admin.
    "metrics": [
        Rule("GET", (200, 200, 200, 200)),
        Rule("GET", (401, 403, 403, 200), remote_addr="198.51.100.7"),
    ],
    "login": [Rule("GET", (200, 200, 200, 200))],
    "logout": [Rule("POST", (LOGIN, LOGIN, LOGIN, LOGIN))],
    # Only the Django admin role gets in; everyone else is sent to the admin's own login.
    "admin:index": [Rule("GET", (ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200))],
    # The schema describes shapes, not data, and the code is open source: it stays public.
    "schema": [Rule("GET", (200, 200, 200, 200))],
    "api-docs": [Rule("GET", (200, 200, 200, 200))],
    # Anonymous here means "no credentials sent": a bad request, not an auth failure.
    "api-token": [Rule("POST", (400, 200, 200, 200), body={"password": PASSWORD}, content_type="json")],
    # --- feedback/urls.py (annotator UI) ---
    "home": [Rule("GET", UI)],
    "guidelines": [Rule("GET", UI)],
    "compare": [Rule("GET", UI)],
    "compare-submit": [Rule("POST", (LOGIN, 200, 403, 403), body={"choice": "a"})],
    "compare-skip": [Rule("POST", (LOGIN, 200, 403, 403), body={"reason": "I cannot judge code"})],
    "write": [Rule("GET", UI)],
    # --- feedback/urls_api.py ---
    "api-projects": [
        Rule("GET", (401, 200, 200, 200)),
        Rule("POST", (401, 403, 403, 201), body={"name": "Made by API"}, content_type="json"),
    ],
    "api-import": [Rule("POST", CURATOR_API, body=IMPORT_BODY, content_type="application/x-ndjson")],
    "api-next-task": [Rule("POST", (401, 200, 200, 200))],
    "api-judgments": [Rule("GET", CURATOR_API)],
    "api-preferences": [Rule("GET", CURATOR_API)],
    "api-annotators": [Rule("GET", CURATOR_API)],
    "api-submit": [Rule("POST", (401, 201, 403, 403), body={"choice": "a"}, content_type="json")],
    "api-skip": [Rule("POST", (401, 200, 403, 403), body={"reason": "unclear"}, content_type="json")],
    # --- training/urls_api.py ---
    "api-models": [Rule("GET", CURATOR_API)],
    "api-lineage": [Rule("GET", CURATOR_API)],
    "api-judgment-models": [Rule("GET", CURATOR_API)],
    # The version is queued and was never deployed, so whoever gets past the role check is
    # refused by the service (409): these rows test the gate without deploying anything.
    "api-force-promote": [Rule("POST", (401, 403, 403, 409), body={"reason": "urgent"}, content_type="json")],
    "api-rollback": [
        Rule(
            "POST",
            (401, 403, 409, 409),
            body=lambda ids: {"version_id": ids["version_id"]},
            content_type="json",
        )
    ],
    # Any signed-in user may call the served models. An empty body is refused before any call
    # to the inference worker, which these tests do not run.
    "api-generate": [Rule("POST", (401, 403, 400, 400), body={}, content_type="json")],
    "api-score": [Rule("POST", (401, 403, 400, 400), body={}, content_type="json")],
    # --- interop/urls_api.py ---
    "api-interop-import": [Rule("POST", CURATOR_API, body=HH_BODY, content_type="application/x-ndjson")],
    "api-interop-export": [Rule("GET", CURATOR_API)],
    "api-label-studio-links": [
        Rule("GET", CURATOR_API),
        Rule("POST", (401, 403, 201, 201), body={"url": "http://ls.test", "token": "t"}, content_type="json"),
    ],
    # The test project has no Label Studio link, so whoever passes the role check is told so (409)
    # and nothing is queued.
    "api-label-studio-sync": [Rule("POST", (401, 403, 409, 409))],
    # --- workers/urls_api.py ---
    # Starting a run is a curator's call; a retry of a run that did not fail is refused (409).
    "api-pipeline-runs": [Rule("GET", CURATOR_API), Rule("POST", (401, 403, 201, 201))],
    "api-pipeline-retry": [Rule("POST", (401, 403, 409, 409))],
    # Curators read the loop's settings; only admins change them.
    "api-pipeline-settings": [
        Rule("GET", CURATOR_API),
        Rule("PATCH", (401, 403, 403, 200), body={"min_new_items": 20}, content_type="json"),
    ],
    # --- console/urls.py ---
    "console-index": [Rule("GET", (LOGIN, 403, 302, 302))],
    "console-overview": [Rule("GET", CONSOLE)],
    "console-review": [Rule("GET", CONSOLE)],
    "console-review-decide": [Rule("POST", (LOGIN, 403, 200, 200), body={"action": "keep"})],
    "console-review-bulk": [
        Rule(
            "POST", (LOGIN, 403, 200, 200), body=lambda ids: {"action": "reject", "ids": [ids["decision_id"]]}
        )
    ],
    "console-item": [Rule("GET", CONSOLE)],
    "console-clusters": [Rule("GET", CONSOLE)],
    "console-cluster": [Rule("GET", CONSOLE)],
    "console-cluster-representative": [Rule("POST", CONSOLE_POST, body={"reason": "clearer"})],
    "console-cluster-decide": [Rule("POST", CONSOLE_POST, body={"action": "keep", "reason": "false match"})],
    "console-thresholds": [Rule("GET", CONSOLE)],
    "console-thresholds-preview": [Rule("POST", (LOGIN, 403, 200, 200), body=THRESHOLDS)],
    "console-thresholds-apply": [Rule("POST", CONSOLE_POST, body=_thresholds_apply_body)],
    # Nothing to restore in a fresh project: refused with a message on the thresholds page.
    "console-thresholds-restore": [Rule("POST", CONSOLE_POST)],
    "console-progress": [Rule("GET", CONSOLE)],
    "console-annotators": [Rule("GET", CONSOLE)],
    "console-annotator-active": [Rule("POST", CONSOLE_POST, body={"value": "0", "reason": "spam"})],
    "console-annotator-exclude": [Rule("POST", CONSOLE_POST, body={"value": "1", "reason": "careless"})],
    "console-snapshots": [Rule("GET", CONSOLE)],
    "console-snapshot-create": [Rule("POST", CONSOLE_POST, body={"note": "permissions"})],
    "console-snapshot-compare": [Rule("GET", CONSOLE)],
    "console-snapshot-verify": [Rule("POST", CONSOLE_POST)],
    "console-snapshot-file": [Rule("GET", CONSOLE)],
    "console-models": [Rule("GET", CONSOLE)],
    # Force-promotion is for admins; the queued version is then refused by the service (409).
    "console-model-promote": [
        Rule("GET", (LOGIN, 403, 403, 200)),
        Rule("POST", (LOGIN, 403, 403, 409), body={"reason": "urgent"}),
    ],
    "console-model-rollback": [
        Rule("GET", CONSOLE),
        Rule("POST", (LOGIN, 403, 409, 409), body={"reason": "regression"}),
    ],
    "console-pipeline": [Rule("GET", CONSOLE)],
    # The world's run succeeded: a retry is refused with a message, after the role check.
    "console-pipeline-run": [Rule("POST", CONSOLE_POST)],
    "console-pipeline-retry": [Rule("POST", CONSOLE_POST)],
    "console-audit": [Rule("GET", CONSOLE)],
}


def routes(resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    """Every route name the project serves. The Django admin counts as one route: its pages
    share one gate (is_staff), checked in depth by test_it_keeps_the_django_admin_for_admins."""
    found: set[str] = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                found.add("admin:index")
                continue
            namespace = f"{pattern.namespace}:" if pattern.namespace else ""
            found |= routes(pattern, prefix + namespace)
        elif isinstance(pattern, URLPattern):
            # An unnamed route cannot be in the table, so it shows up as a failure by its path.
            found.add(prefix + pattern.name if pattern.name else f"<unnamed {pattern.pattern}>")
    return found


def test_it_has_a_rule_for_every_route():
    served = routes()
    assert served - set(TABLE) == set(), "new routes need a row in TABLE"
    assert set(TABLE) - served == set(), "TABLE lists routes that no longer exist"


@pytest.fixture
def world(db: None, settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.EXPORT_DIR = tmp_path / "exports"
    project = make_project(name="Permissions")
    first = make_task(project, priority=2)
    other_task = make_task(project, priority=1)
    alice = make_user("alice", Role.ANNOTATOR)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    return {
        "project": project,
        "assignment": lease,
        "judgment": Judgment.objects.create(task=other_task, annotator=make_user("erin"), choice="a"),
        "version": ModelVersion.objects.create(project=project, kind=ModelKind.POLICY, number=1, base="tiny"),
        "run": PipelineRun.objects.create(project=project, trigger="test", status=RunStatus.SUCCEEDED),
        "decision": _reviewable(first.prompt),
        "snapshot": snapshot_create(project=project, actor=None),
        "annotator": alice,
        "curator": make_user("carol", Role.CURATOR),
        "admin": make_user("dave", Role.ADMIN),
    }


def _reviewable(prompt: Any) -> CurationDecision:
    """A curated prompt waiting for review, alone in its duplicate cluster."""
    decision = CurationDecision.objects.create(
        project_id=prompt.project_id,
        kind=ItemKind.PROMPT,
        prompt=prompt,
        status=Status.NEEDS_REVIEW,
        pipeline_status=Status.NEEDS_REVIEW,
        processed_at=timezone.now(),
    )
    decision.cluster_representative = decision
    decision.save(update_fields=["cluster_representative"])
    return decision


def client_as(user: User | None) -> APIClient:
    """Signed in both ways a real client can be: a session for pages, a token for the API."""
    client = APIClient()
    if user is not None:
        client.force_login(user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def route_params(name: str) -> list[str]:
    # The resolver knows which arguments each route takes; a namespaced route (the admin) has
    # no entry at the root and takes none.
    entries = get_resolver().reverse_dict.getlist(name)
    return list(entries[0][0][0][1]) if entries else []


def url_for(name: str, ids: dict[str, Any]) -> str:
    return reverse(name, kwargs={param: ids[param] for param in route_params(name)})


def send(client: APIClient, url: str, rule: Rule, body: dict[str, Any] | bytes | None) -> Any:
    if rule.method == "GET":
        return client.get(url, REMOTE_ADDR=rule.remote_addr)
    if rule.method == "PATCH":
        return client.patch(url, body or {}, format="json", REMOTE_ADDR=rule.remote_addr)
    if isinstance(body, bytes):
        return client.post(url, body, content_type=rule.content_type, REMOTE_ADDR=rule.remote_addr)
    if rule.content_type == "json":
        return client.post(url, body or {}, format="json", REMOTE_ADDR=rule.remote_addr)
    return client.post(url, body or {}, REMOTE_ADDR=rule.remote_addr)


def ids_of(world: dict[str, Any]) -> dict[str, Any]:
    return {
        "project_id": world["project"].pk,
        "assignment_id": world["assignment"].pk,
        "judgment_id": world["judgment"].pk,
        "version_id": world["version"].pk,
        "kind": world["version"].kind,
        "format_name": "hh",
        "run_id": world["run"].pk,
        "decision_id": world["decision"].pk,
        "user_id": world["annotator"].pk,
        "snapshot_id": world["snapshot"].pk,
        "filename": "manifest.json",
    }


def cases() -> list[Any]:
    return [
        pytest.param(name, rule, role_index, id=f"{name}-{rule.method}-{role}")
        for name, rules in TABLE.items()
        for rule in rules
        for role_index, role in enumerate(ROLES)
    ]


@pytest.mark.parametrize(("name", "rule", "role_index"), cases())
def test_it_answers_each_role_as_the_table_says(world, name: str, rule: Rule, role_index: int):
    role = ROLES[role_index]
    user = None if role == "anonymous" else world[role]
    client = client_as(user)
    ids = ids_of(world)
    body = rule.body(ids) if callable(rule.body) else rule.body
    if name == "api-token" and user is not None:
        body = {"username": user.username, "password": PASSWORD}
    response = send(client, url_for(name, ids), rule, body)
    expected = rule.expect[role_index]
    if expected == LOGIN:
        assert response.status_code == 302, response.content[:300]
        assert response["Location"].startswith(reverse("login"))
    elif expected == ADMIN_LOGIN:
        assert response.status_code == 302, response.content[:300]
        assert response["Location"].startswith(reverse("admin:login"))
    else:
        assert response.status_code == expected, response.content[:300]


def admin_pages() -> list[str]:
    pages = ["admin:index"]
    for model in admin.site._registry:
        meta = model._meta
        pages += [f"admin:{meta.app_label}_{meta.model_name}_changelist"]
    return pages


@pytest.mark.parametrize("role", ROLES)
def test_it_keeps_the_django_admin_for_admins(world, role: str):
    user = None if role == "anonymous" else world[role]
    client = client_as(user)
    for page in admin_pages():
        response = client.get(reverse(page))
        if role == "admin":
            assert response.status_code == 200, page
        else:
            # Never the page itself: a redirect to the admin's login, which a non-staff user
            # cannot get past.
            assert response.status_code == 302, (page, response.status_code)
            assert response["Location"].startswith(reverse("admin:login")), page


def test_it_keeps_the_admin_login_shut_to_curators_and_annotators(world):
    for role in ("annotator", "curator"):
        client = APIClient()
        response = client.post(
            reverse("admin:login"), {"username": world[role].username, "password": PASSWORD}
        )
        # The admin login re-renders with an error instead of letting a non-staff user in.
        assert response.status_code == 200
        assert b"staff account" in response.content
        assert client.get(reverse("admin:index")).status_code == 302


def test_it_keeps_annotators_to_their_own_assignments(world):
    bob = make_user("bob", Role.ANNOTATOR)
    client = client_as(bob)
    assignment, project = world["assignment"], world["project"]
    ids = {"project_id": project.pk, "assignment_id": assignment.pk}
    attempts = [
        client.post(reverse("compare-submit", kwargs=ids), {"choice": "a"}),
        client.post(reverse("compare-skip", kwargs=ids), {"reason": "not mine"}),
        client.post(reverse("api-submit", kwargs={"assignment_id": assignment.pk}), {"choice": "a"}),
        client.post(reverse("api-skip", kwargs={"assignment_id": assignment.pk}), {"reason": "not mine"}),
    ]
    assert [r.status_code for r in attempts] == [403, 403, 403, 403]
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ACTIVE
    assert not Judgment.objects.filter(task=assignment.task).exists()


def test_it_never_shows_an_annotator_someone_elses_judgment(world):
    alice, project = world["annotator"], world["project"]
    services.comparison_submit(
        assignment=world["assignment"], annotator=alice, choice="a", rationale="alice-private-rationale"
    )
    bob = make_user("bob", Role.ANNOTATOR)
    client = client_as(bob)
    # Every page and endpoint bob can reach, read as bob: alice's words appear in none of them.
    for name, rules in TABLE.items():
        for rule in rules:
            if rule.method != "GET" or name.startswith("admin:"):
                continue
            response = client.get(url_for(name, ids_of(world)))
            assert response.status_code < 500, name
            content = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"alice-private-rationale" not in content, name
    # The same reads as a curator do include it, so the check above can see the rationale.
    curator = client_as(world["curator"])
    export = curator.get(reverse("api-judgments", kwargs={"project_id": project.pk}))
    assert b"alice-private-rationale" in b"".join(export.streaming_content)


@pytest.mark.parametrize("unknown", [987_654, 10**30], ids=["missing", "beyond-bigint"])
def test_it_answers_404_for_unknown_ids_on_every_route(world, unknown: int):
    # As the admin, who passes every role check, with one id at a time unknown and the rest
    # real, so the unknown id is the only thing wrong.
    client = client_as(world["admin"])
    checked = 0
    for name, rules in TABLE.items():
        for param in route_params(name):
            ids = ids_of(world) | {param: unknown}
            for rule in rules:
                body = rule.body(ids) if callable(rule.body) else rule.body
                response = send(client, url_for(name, ids), rule, body)
                assert response.status_code == 404, (
                    name,
                    param,
                    response.status_code,
                    response.content[:300],
                )
                if name.startswith("api-"):
                    assert response.json()["detail"].startswith("No "), (name, param)
                checked += 1
    assert checked >= 15
