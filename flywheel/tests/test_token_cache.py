"""The per-connection API token cache (flywheel.postgres, flywheel.authentication): a token is
read once per connection, and any change to a user or a token, by any writer, is seen by the
next request."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from feedback.tests.factories import make_project, make_task, make_user
from feedback.tests.test_api import client_for, next_task, submit_url
from flywheel.models import Role
from flywheel.postgres import base as postgres
from flywheel.tests.test_postgres_backend import wait_readable

# Committed writes only: PostgreSQL delivers a notification when its transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_SQL = "FROM authtoken_token"


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the cache is PostgreSQL's: it listens for the triggers' notifications")


def token_reads(client, url: str = reverse("api-projects"), status: int = 200) -> int:
    """GET url; how many times the request read a token from the database."""
    statements: list[str] = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)  # the SQL itself, prepared or not (Django logs None for those)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = client.get(url)
    assert response.status_code == status, response.content
    return sum(1 for sql in statements if TOKEN_SQL in sql)


def elsewhere(sql: str, params: list[object]) -> None:
    """Run a statement in another session, as another process (the admin, a script) would."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute(sql, params)


def test_a_token_is_read_once_per_connection():
    client = client_for(make_user("erin"))
    assert token_reads(client) == 1
    assert token_reads(client) == 0
    assert token_reads(client) == 0
    # A new connection has heard no notifications: it reads again before it trusts a cache.
    connection.close()
    assert token_reads(client) == 1
    assert token_reads(client) == 0


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ("DELETE FROM authtoken_token WHERE user_id = %s", "Invalid token."),
        ("UPDATE flywheel_user SET is_active = false WHERE id = %s", "User inactive or deleted."),
    ],
    ids=["token deleted", "account disabled"],
)
def test_a_change_made_elsewhere_is_refused_by_the_next_request(change: str, detail: str):
    user = make_user("erin")
    client = client_for(user)
    assert token_reads(client) == 1 and token_reads(client) == 0
    elsewhere(change, [user.pk])
    wait_readable("the change's notification never arrived")
    response = client.get(reverse("api-projects"))
    assert response.status_code == 401
    assert response.json()["detail"] == detail


def test_a_role_changed_through_the_orm_applies_to_the_next_request():
    user = make_user("erin", Role.ANNOTATOR)
    client = client_for(user)
    project = make_project(name="Exports")
    export = reverse("api-judgments", kwargs={"project_id": project.pk})
    assert token_reads(client, export, status=403) == 1
    assert token_reads(client, export, status=403) == 0
    user.role = Role.CURATOR
    user.save()  # this connection's own commit notifies it too
    assert token_reads(client, export, status=200) == 1


def test_a_token_read_while_a_change_comes_in_is_not_kept():
    user = make_user("erin")
    client = client_for(user)
    assert token_reads(client) == 1  # listening from here on
    # Another user changes while this connection is idle: the notification waits on the socket,
    # so the next request reads its token anew, and takes the notification in as it does.
    elsewhere("UPDATE flywheel_user SET first_name = 'x' WHERE id <> %s", [user.pk])
    wait_readable("the update's notification never arrived")
    assert token_reads(client) == 1
    # That read may predate the change it heard of, so it was not kept: read once more, then kept.
    assert token_reads(client) == 1
    assert token_reads(client) == 0


def test_it_can_be_turned_off(settings):
    settings.FLYWHEEL_TOKEN_CACHE = False
    client = client_for(make_user("erin"))
    assert [token_reads(client) for _ in range(3)] == [1, 1, 1]


def test_a_judgment_with_the_next_lease_is_two_statements_on_a_warm_connection():
    """The annotation hot path once the token is cached: the submit, and the lease function."""
    annotator = make_user("erin")
    project = make_project(name="Hot path")
    for _ in range(3):
        make_task(project)
    client = client_for(annotator)
    payload = next_task(client, project)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            submit_url(payload["assignment_id"]), {"choice": "a", "next": True}, format="json"
        )
    assert response.status_code == 201 and response.json()["next"] is not None, response.content
    assert len(queries.captured_queries) == 2, [q["sql"] for q in queries.captured_queries]


def test_a_key_that_was_never_valid_is_never_cached():
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    for _ in range(2):
        response = client.get(reverse("api-projects"))
        assert response.status_code == 401
    assert not Token.objects.filter(key="0" * 40).exists()
    assert "0" * 40 not in (connection.auth_rows or {})


def test_a_connection_that_cannot_listen_reads_every_token(monkeypatch, caplog):
    # As on a server that refuses LISTEN (a hot standby): here a channel name PostgreSQL rejects.
    monkeypatch.setattr(postgres, "AUTH_CHANNEL", "not a channel")
    connection.close()
    client = client_for(make_user("erin"))
    assert [token_reads(client) for _ in range(3)] == [1, 1, 1]
    # Tried once per connection, not on every request.
    assert caplog.text.count("LISTEN failed") == 1
