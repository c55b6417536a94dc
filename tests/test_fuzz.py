"""Fuzzing: no request gives a 5xx.

1. Every operation of the OpenAPI schema, with schemathesis cases (valid and invalid ones) sent
   by a token that holds every scope, to the real dataset, item and export most of the time (so
   the cases reach validation and the services, not only the 404 for an unknown slug).
2. Every HTML form view, posted hostile values (NUL, lone-surrogate escapes, huge, deep JSON,
   numbers out of range, markup) by the people allowed to use it.

Bounded: ``SYNTHGATE_FUZZ_EXAMPLES`` cases per operation and mode, and per form (default 10).
"""

import json
import os
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Group
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from corpus.models import Export
from tests.conftest import _token
from tests.factories import DatasetFactory, ItemFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(240)]

EXAMPLES = int(os.environ.get("SYNTHGATE_FUZZ_EXAMPLES", "10"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _operations() -> list[Any]:
    import django

    django.setup()
    spec = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    schema = schemathesis.openapi.from_dict(spec)
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = _operations()


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(slug="demo")
    item = ItemFactory(dataset=dataset, state="approved")
    export = Export.objects.create(dataset=dataset, requested_by="test")
    token = _token(["produce", "consume", "admin"], None, name="fuzzer")
    return {"item": item.pk, "export": export.pk, "token": token.key}


def _send(client, world, case) -> Any:  # type: ignore[no-untyped-def]
    path_parameters = dict(case.path_parameters or {})
    # Mostly the real objects: a random slug or id only ever meets the 404.
    real = {"slug": "demo", "item_id": world["item"], "export_id": world["export"]}
    for name, value in path_parameters.items():
        if name in real and hash(repr(value)) % 4:
            path_parameters[name] = real[name]
    case.path_parameters = path_parameters
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    headers = {"HTTP_AUTHORIZATION": f"Token {world['token']}"}
    method = case.method.lower()
    kwargs: dict[str, Any] = {}
    body = case.body
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["content_type"] = "application/json"
    elif body is not None and not isinstance(body, schemathesis.core.NotSet):
        kwargs["data"] = json.dumps(body, default=str)
        kwargs["content_type"] = "application/json"
    path = case.formatted_path
    if method == "get":
        return client.get(path, query, **headers)
    if query:
        from urllib.parse import urlencode

        path = f"{path}?{urlencode(query, doseq=True)}"
    return getattr(client, method)(path, **kwargs, **headers)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_api_operation_never_answers_5xx(client, world, operation, mode):
    client.raise_request_exception = False

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):  # type: ignore[no-untyped-def]
        response = _send(client, world, case)
        assert response.status_code < 500, (case.method, case.formatted_path, case.body)

    check()


# --- HTML forms ----------------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\\ud800",
            '{"source_caps": {"\\u0000": {"share": 0.5}}}',
            '{"source_caps": {"\\ud800": {"share": 0.5}}}',
            '{"seed": 1e400}',
            '{"seed": 123456789012345678901234567890}',
            "[" * 5000 + "]" * 5000,
            '{"a":' * 900 + "1" + "}" * 900,
            "<script>alert(1)</script>",
            "x" * 200_000,
            "-1",
            "99999999999999999999999",
            "NaN",
            "approve",
            "reject",
            "mark",
        ]
    ),
    st.text(max_size=40),
)


def _form_fields(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, HOSTILE))


# (path, the fields the view reads, who posts)
FORMS = [
    ("/accounts/login/", ("username", "password", "next"), None),
    ("/datasets/demo/exports/policy", ("policy",), "admin"),
    ("/datasets/demo/exports/preview", ("mode",), "admin"),
    ("/datasets/demo/exports/new", ("format", "mode"), "admin"),
    ("/datasets/demo/retract", ("item_id", "reason"), "admin"),
    ("/review/demo/undo", ("back",), "reviewer"),
    ("/review/demo/items/bulk", ("ids", "verdict", "reason", "note", "back"), "reviewer"),
    ("/review/demo/items/{item}/decide", ("verdict", "reason", "note", "back"), "reviewer"),
    ("/review/demo/items/{item}/skip", ("back",), "reviewer"),
    ("/review/demo/items/{item}/lease", (), "reviewer"),
    ("/review/demo/items/{item}/gold", ("action", "expected", "note"), "admin"),
    ("/review/demo/settings/policy", ("mode", "votes", "agreement", "escalate"), "admin"),
    ("/review/demo/settings/reasons", ("reasons",), "admin"),
    ("/review/demo/settings/quota", ("reviewer", "daily_limit", "limit"), "admin"),
]


@pytest.fixture
def people(world):  # type: ignore[no-untyped-def]
    from corpus.models import Dataset

    reviewer = UserFactory(username="fuzz-reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    Dataset.objects.get(slug="demo").reviewers.add(reviewer)
    admin = UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True)
    return {"reviewer": reviewer, "admin": admin}


@pytest.mark.parametrize(("path", "fields", "who"), FORMS, ids=[f[0] for f in FORMS])
def test_html_form_never_answers_5xx(client, world, people, path, fields, who):
    client.raise_request_exception = False
    if who:
        client.force_login(people[who])
    url = path.format(item=world["item"])

    @FUZZ
    @given(form=_form_fields(fields), htmx=st.booleans())
    def check(form, htmx):  # type: ignore[no-untyped-def]
        extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        response = client.post(url, form, **extra)
        assert response.status_code < 500, (url, form)

    check()
