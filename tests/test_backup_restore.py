"""Backups and a database restart (issue 14.7), on a private PostgreSQL cluster this test starts
and stops itself (initdb / pg_ctl from the PostgreSQL 15 binaries; as the ``postgres`` user when
run as root, since initdb refuses root).

1. Ingest over HTTP and review decisions run while PostgreSQL is killed (``pg_ctl stop -m
   immediate``, a crash) and started again: the app answers 503 while it is away and recovers
   by itself; every acknowledged write is there afterwards, the unacknowledged ones are absent
   and go through when retried, exactly once.
2. ``pg_dump -Fc`` / ``pg_restore`` into a new database: ``verify_audit`` and ``verify_export``
   pass on the restored copy (the procedure in the README, "Backups"), and the near-duplicate
   index in Redis is rebuilt without ``rebuild_index``: the periodic sweep heals an index whose
   marker is ahead of the restored database (the live one scored on after the dump), and a
   scorer heals an empty one before its batch, auto-rejecting a near-copy of a reference item
   loaded before the backup.

The app runs in this process (the test client, the services) against the private cluster: the
default connection is pointed at it for the test's duration.
"""

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.test import Client

from corpus.models import AuditEvent, NearDupIndexState
from corpus.redis_client import redis_client
from corpus.services import near_dup_index, scoring
from corpus.tasks import items_sweep_pending_task
from tests.pipeline.test_redis_loss import _copy
from tests.pipeline.test_scoring_pipeline import _varied

N_REFERENCE = 5
PG_BIN = Path(os.environ.get("SYNTHGATE_PG_BIN", "/usr/lib/postgresql/15/bin"))

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not (PG_BIN / "initdb").exists(),
        reason="needs PostgreSQL and its server binaries",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self, root: Path) -> None:
        self.root, self.data, self.port = root, root / "data", _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(root, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, *argv: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run(
            [*prefix, *map(str, argv)], capture_output=True, text=True, check=check, timeout=60
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-o", options,
                  "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def tool(self, name: str, *args: object) -> None:
        self._run(PG_BIN / name, "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", *args)


@pytest.fixture
def cluster(django_db_blocker) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    root = Path(tempfile.mkdtemp(prefix="sg-pg-"))
    root.chmod(0o755)
    made = Cluster(root)
    made.start()
    try:
        yield made
    finally:
        made.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def pointed_at(cluster: Cluster, name: str) -> Iterator[None]:
    """The default connection on database ``name`` of the private cluster."""
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(
        NAME=name, HOST="127.0.0.1", PORT=str(cluster.port), USER="postgres", PASSWORD=""
    )
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


def _batch(n: int) -> bytes:
    items = [{"text": f"batch {n} item {i} " * 5, "external_id": f"b{n}-{i}"} for i in range(20)]
    return json.dumps({"source": "pipe", "items": items}).encode()


def _ingest(client: Client, key: str, n: int) -> int:
    return client.post(
        "/api/v1/datasets/demo/items/",
        data=_batch(n),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    ).status_code


def _items_of(n: int) -> int:
    from corpus.models import Item

    return Item.objects.filter(external_id__startswith=f"b{n}-").count()


def _load(dataset, texts: list[str], *, reference: bool = True) -> list[int]:  # type: ignore[no-untyped-def]
    """Items loaded by the service, their scoring message not sent (the test scores them)."""
    from django.test import TestCase

    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse

    with TestCase.captureOnCommitCallbacks(execute=False):
        outcome = items_ingest(
            dataset=dataset,
            items=items_parse([{"text": t, "origin": "human"} for t in texts]),
            actor=SYSTEM,
            default_source="backup",
            reference=reference,
        )
    return [r.id for r in outcome.results]


def test_restart_mid_ingest_and_decisions_then_backup_and_restore(
    cluster, django_db_blocker, settings, tmp_path
):
    settings.SYNTHGATE_EXPORT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "exports")},
    }
    settings.SYNTHGATE_EXPORT_TMP_DIR = str(tmp_path / "staging")
    cluster.tool("createdb", "sg_live")
    with django_db_blocker.unblock(), pointed_at(cluster, "sg_live"):
        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import Group

        from corpus.models import Dataset, Export, Item
        from corpus.services.audit import SYSTEM
        from corpus.services.datasets import dataset_create
        from corpus.services.exports.build import export_build, export_request
        from corpus.services.tokens import token_create
        from review.models import Decision
        from review.services.decisions import decision_record
        from review.services.queue import item_claim
        from tests.factories import UserFactory

        dataset = dataset_create(actor=SYSTEM, slug="demo", name="Demo")
        _, key = token_create(actor=SYSTEM, name="p", scopes=["produce"], dataset=dataset)
        alice = UserFactory(username="alice")
        alice.groups.add(Group.objects.get(name="reviewer"))
        dataset.reviewers.add(alice)
        client = Client(raise_request_exception=False)

        # Ingest: three acknowledged batches, then the database crashes.
        assert [_ingest(client, key, n) for n in range(3)] == [201, 201, 201]
        cluster.stop("immediate")
        assert _ingest(client, key, 3) == 503  # not acknowledged
        assert client.get("/healthz").status_code == 503
        cluster.start()
        # Recovered by itself: the broken connection was dropped after the failed request.
        assert client.get("/healthz").json()["checks"]["database"]["ok"]
        assert [_items_of(n) for n in range(4)] == [20, 20, 20, 0]
        assert _ingest(client, key, 3) == 201  # the retry goes through once
        assert _ingest(client, key, 3) == 201  # and a second retry duplicates nothing
        assert [_items_of(n) for n in range(4)] == [20, 20, 20, 20]

        # Decisions: two acknowledged, then one in flight when the database goes away.
        Item.objects.filter(dataset=dataset).update(state=Item.State.QUEUED)
        dataset = Dataset.objects.get(pk=dataset.pk)
        decided = []
        for _ in range(2):
            held = item_claim(dataset=dataset, reviewer=alice).claim
            decision_record(
                dataset=dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
            )
            decided.append(held.item_id)
        held = item_claim(dataset=dataset, reviewer=alice).claim
        cluster.stop("immediate")
        with pytest.raises(OperationalError):
            decision_record(
                dataset=dataset, reviewer=alice, item_id=held.item_id, verdict="approve"
            )
        connection.close()
        cluster.start()
        assert not Decision.objects.filter(item_id=held.item_id).exists()
        held = item_claim(dataset=dataset, reviewer=alice).claim  # retried: the lease is still hers
        decision_record(dataset=dataset, reviewer=alice, item_id=held.item_id, verdict="approve")
        decided.append(held.item_id)
        assert sorted(
            Decision.objects.filter(item_id__in=decided).values_list("item_id", flat=True)
        ) == sorted(decided)
        assert Item.objects.filter(pk__in=decided, state=Item.State.APPROVED).count() == 3

        # Reference items scored as the worker scores them: the near-duplicate index in Redis
        # holds them, at the generation the database counts.
        references = _load(dataset, [_varied(300_000 + i, words=150) for i in range(N_REFERENCE)])
        scoring.items_score(item_ids=references)
        backed_up_generation = NearDupIndexState.objects.get(dataset=dataset).generation
        assert near_dup_index.index_marker_get(dataset.pk) == backed_up_generation

        export = export_request(dataset=dataset, actor=SYSTEM)
        export_build(export_id=export.pk)
        assert Export.objects.get(pk=export.pk).status == Export.Status.READY
        from corpus.tasks import audit_anchor_task

        audit_anchor_task()

    # Backup and restore into a new database.
    dump = cluster.root / "backup.dump"
    cluster.tool("pg_dump", "-Fc", "-f", dump, "sg_live")
    with django_db_blocker.unblock(), pointed_at(cluster, "sg_live"):
        # The live installation scores on after the dump: Redis now reflects a later database
        # state than the one restored (items the restored database has never seen).
        later = _load(dataset, [_varied(400_000 + i, words=150) for i in range(3)])
        scoring.items_score(item_ids=later)
        assert near_dup_index.index_marker_get(dataset.pk) > backed_up_generation
    cluster.tool("createdb", "sg_restored")
    cluster.tool("pg_restore", "--no-owner", "-d", "sg_restored", dump)
    with django_db_blocker.unblock(), pointed_at(cluster, "sg_restored"):
        out = StringIO()
        call_command("verify_audit", stdout=out)
        assert "audit chain intact" in out.getvalue()
        out = StringIO()
        call_command("verify_export", str(export.pk), stdout=out)
        assert f"export {export.pk}: OK" in out.getvalue()
        from corpus.models import Item

        assert Item.objects.filter(dataset__slug="demo").count() == 80 + N_REFERENCE

        # The Redis index is rebuilt with no command typed: the periodic sweep (what beat sends
        # the worker) finds the marker ahead of the restored database and heals it.
        state = NearDupIndexState.objects.get(dataset=dataset)
        assert state.generation == backed_up_generation
        assert near_dup_index.index_marker_get(dataset.pk) != state.generation
        items_sweep_pending_task()
        state = NearDupIndexState.objects.get(dataset=dataset)
        assert near_dup_index.index_marker_get(dataset.pk) == state.generation
        assert not state.degraded_reason
        assert near_dup_index.index_health() == {"ok": True}
        healed = AuditEvent.objects.filter(action="index.healed").latest("seq")
        assert healed.payload["indexed"] == N_REFERENCE  # none of the items the dump lacks
        assert "database at" in healed.payload["reason"]

        # And with Redis empty (restored to a fresh server), the scorer heals it before its
        # batch: a near-copy ingested after the restore is auto-rejected against a reference
        # item from before the backup.
        redis_client().flushdb()
        rng = random.Random(7)
        [copy] = _load(dataset, [_copy(_varied(300_001, words=150), rng)], reference=False)
        outcome = scoring.items_score(item_ids=[copy])
        assert outcome["auto_rejected"] == [copy]
        assert f"with reference item {references[1]}" in Item.objects.get(pk=copy).state_reason
        state = NearDupIndexState.objects.get(dataset=dataset)
        assert near_dup_index.index_marker_get(dataset.pk) == state.generation
        assert not state.degraded_reason
