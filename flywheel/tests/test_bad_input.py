"""Bad input on every route: a clear 4xx (or the page again with a message), never a 500.

The routes and their bodies come from test_permissions' TABLE, so a new route is swept as soon
as it has a row there. Each route is called by the first role the table lets through, with
every field of its body replaced in turn by values of the wrong type and shape, with bodies
that are not objects, with JSON that does not parse, and with nonsense in the query string.
"""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.tests.test_permissions import (
    ROLES,
    TABLE,
    Rule,
    client_as,
    ids_of,
    url_for,
    world,  # noqa: F401  (the fixture)
)

ODD_VALUES: list[Any] = [
    None,
    [],
    {},
    [1, [2]],
    {"nested": {"deeper": None}},
    -1,
    2**63,
    1e308,
    True,
    "",
    " ",
    "x" * 20_000,
    "\x00",
    "💥",
    "1; DROP TABLE x",
    "../../etc/passwd",
]
ODD_BODIES: list[Any] = [[], [1, 2], "text", 7, None, {"unknown": "field"}]
ODD_QUERIES = [
    "page=abc",
    "page=-1&page_size=0",
    "page=99999999999999999999",
    "limit=abc&offset=-5",
    "ordering=%00&status=nonsense&kind=nope",
    "since=not-a-date&until=2026-13-45",
    "project=abc&annotator=%ff&q=" + "x" * 5000,
    "cursor=%%%",
]


def _allowed(rule: Rule) -> str | None:
    """The first role the table lets through (a 2xx, a redirect after a form, or a refusal by
    the service after the role check), or None when nobody is."""
    for role, outcome in zip(ROLES, rule.expect, strict=True):
        if role != "anonymous" and isinstance(outcome, int) and outcome not in (401, 403):
            return role
    return None


def _cases(methods: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(name, rule, id=f"{name}-{rule.method}")
        for name, rules in TABLE.items()
        for rule in rules
        if rule.method in methods and _allowed(rule) and rule.remote_addr == "127.0.0.1"
    ]


def _send(client: Any, url: str, rule: Rule, body: Any, *, raw: bytes | None = None) -> Any:
    if raw is not None:
        return client.generic(rule.method, url, raw, content_type="application/json")
    if rule.content_type in ("json", "") and rule.method == "PATCH":
        return client.patch(url, body, format="json")
    if rule.content_type == "json":
        return client.post(url, body, format="json")
    if rule.content_type:  # a file upload as the raw body
        return client.post(
            url, body if isinstance(body, bytes) else str(body).encode(), content_type=rule.content_type
        )
    # A form: the test client cannot encode None, nested containers or lists of lists.
    form = {key: value if isinstance(value, str | int | float) else str(value) for key, value in body.items()}
    return client.post(url, form)


def _assert_no_500(answer: Any, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.content[:300]!r}"


@pytest.mark.parametrize(("name", "rule"), _cases(("POST", "PATCH")))
def test_a_write_with_bad_fields_is_refused_not_a_500(world, name: str, rule: Rule):  # noqa: F811
    client = client_as(world[_allowed(rule)])
    ids = ids_of(world)
    base = rule.body(ids) if callable(rule.body) else rule.body
    fields: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    for key in [*fields, "reason", "note", "id", "ids", "project"]:
        for value in ODD_VALUES:
            _assert_no_500(
                _send(client, url_for(name, ids), rule, {**fields, key: value}), f"{key}={value!r:.40}"
            )
    if rule.content_type == "json" or rule.method == "PATCH":
        for body in ODD_BODIES:
            _assert_no_500(_send(client, url_for(name, ids), rule, body), f"body {body!r}")
        for raw in (b"{", b"\xff\xfe", b'{"a": NaN}', b"[" * 5000):
            _assert_no_500(_send(client, url_for(name, ids), rule, None, raw=raw), f"raw {raw[:10]!r}")


@pytest.mark.parametrize(("name", "rule"), _cases(("GET",)))
def test_a_read_with_a_nonsense_query_is_answered_not_a_500(world, name: str, rule: Rule):  # noqa: F811
    client = client_as(world[_allowed(rule)])
    url = url_for(name, ids_of(world))
    for query in ODD_QUERIES:
        _assert_no_500(client.get(f"{url}?{query}"), query)
