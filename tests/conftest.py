"""Shared fixtures: personas (healthchecks' Alice, Bob, Charlie style), tokens, API clients, and
the embedded Redis the suite runs against when REDIS_URL is unset."""

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.worker"]

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) starts the embedded Redis; xdist workers reuse it."""
    if os.environ.get("REDIS_URL") or hasattr(config, "workerinput"):
        return
    from django.conf import settings

    from config import embedded_redis

    directory = Path(settings.TEST_REDIS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config._synthgate_redis = embedded_redis.start(directory, persist=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    process = getattr(config, "_synthgate_redis", None)
    if process is not None:
        from config import embedded_redis

        embedded_redis.stop(process)


@pytest.fixture(autouse=True)
def _clean_redis_db() -> Iterator[None]:
    """Each test starts from an empty Redis database of its own xdist worker."""
    from django.core.cache import cache

    cache._cache.get_client(write=True).flushdb()
    yield


@pytest.fixture(autouse=True)
def _audit_anchor_file(settings, tmp_path):
    """Each test anchors the audit chain to a file of its own, never to var/'s real one."""
    settings.SYNTHGATE_AUDIT_ANCHOR_PATH = str(tmp_path / "audit-anchors.log")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """SQLite's audit triggers refuse the DELETE that ends a transactional test: lift them."""
    from tests.audit.guards import sqlite_guards_lifted

    with sqlite_guards_lifted(item):
        return (yield)


@pytest.fixture
def reviewer(db):
    from tests.factories import UserFactory

    return UserFactory(username="alice")


@pytest.fixture
def reviewer2(db):
    from tests.factories import UserFactory

    return UserFactory(username="bob")


@pytest.fixture
def outsider(db):
    """Someone with an account and no access to any dataset."""
    from tests.factories import UserFactory

    return UserFactory(username="charlie")


@pytest.fixture
def admin_user(db):
    from tests.factories import UserFactory

    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def dataset(db, reviewer, reviewer2):
    from tests.factories import DatasetFactory

    ds = DatasetFactory(slug="demo")
    ds.reviewers.set([reviewer, reviewer2])
    return ds


@pytest.fixture
def other_dataset(db):
    from tests.factories import DatasetFactory

    return DatasetFactory(slug="other")


def _token(scopes: list[str], dataset=None, name: str = "t"):
    from corpus.services.audit import SYSTEM
    from corpus.services.tokens import token_create

    token, key = token_create(actor=SYSTEM, name=name, scopes=scopes, dataset=dataset)
    token.key = key
    return token


@pytest.fixture
def produce_token(dataset):
    return _token(["produce"], dataset, name="producer")


@pytest.fixture
def consume_token(dataset):
    return _token(["consume"], dataset, name="consumer")


@pytest.fixture
def admin_token(db):
    return _token(["admin"], None, name="root")


@pytest.fixture
def other_produce_token(other_dataset):
    """A producer of another dataset: must be refused on `demo`."""
    return _token(["produce", "consume"], other_dataset, name="other-producer")


@pytest.fixture
def api():
    """An API client; ``api.as_token(token)`` authenticates it."""
    from rest_framework.test import APIClient

    client = APIClient()

    def as_token(token):
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    client.as_token = as_token
    return client
