"""Building exports: what goes in, the manifest, policies, immutability, failures, undo."""

import hashlib
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from corpus.models import AuditEvent, Export, ExportItem, ExportPolicy, Item, ItemParent, Score
from corpus.scoring.text import content_hash
from corpus.services.audit import SYSTEM
from corpus.services.audit_verify import audit_verify
from corpus.services.exports import build as build_module
from corpus.services.exports.build import export_build, export_request
from corpus.services.exports.merkle import merkle_root
from corpus.services.items import ItemStateError, item_gold_set, item_outcome_reopen
from corpus.services.policy import policy_set
from corpus.services.retractions import item_retract
from tests.exports.conftest import approve, approved_items, build
from tests.factories import ItemFactory, SourceFactory


def _rows(export: Export, tmp_path: Path) -> list[dict]:
    path = tmp_path / "exports" / export.file
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _file(export: Export, tmp_path: Path) -> Path:
    return tmp_path / "exports" / export.file


def test_only_approved_non_gold_items_leave(dataset, export_dirs):
    # Given approved items, and items in every other state, one approved gold item and one
    # retracted item
    kept = approved_items(dataset, 3)
    for state in (Item.State.PENDING, Item.State.QUEUED, Item.State.REJECTED):
        ItemFactory(dataset=dataset, state=state)
    gold = approved_items(dataset, 1)[0]
    item_gold_set(item_id=gold.pk, is_gold=True)
    retracted = approved_items(dataset, 1)[0]
    item_retract(item_id=retracted.pk, reason="leaked test set", actor=SYSTEM)

    # When an export is built
    export = build(dataset)

    # Then exactly the approved, non-gold, non-retracted items are in the file, in id order
    assert export.status == Export.Status.READY, export.error
    rows = _rows(export, export_dirs)
    assert [r["id"] for r in rows] == [i.pk for i in kept]
    assert export.rows_written == export.rows_total == 3


def test_rows_carry_provenance_scores_and_decision(dataset, export_dirs):
    # Given a human parent and a synthetic child with a score, approved by reviewers 3 and 9
    source = SourceFactory(dataset=dataset, name="books")
    parent = ItemFactory(dataset=dataset, source=source, origin="human", generation=0)
    child = ItemFactory(
        dataset=dataset,
        source=source,
        origin="synthetic",
        generator_model="gpt-x",
        generator_version="2",
        generation=1,
        metadata={"lang": "en", "tags": ["a", "b"]},
    )
    ItemParent.objects.create(child=child, parent=parent)
    Score.objects.create(
        item=child,
        scorer_version="1",
        detector_name="features",
        detector_version="3",
        detector_probability=0.8,
        lexical={"distinct_1": 0.9},
        near_duplicate_of=parent,
        near_duplicate_jaccard=0.6,
    )
    approve([parent, child], reviewer_ids=[9, 3])

    # When exported
    export = build(dataset)
    rows = {r["id"]: r for r in _rows(export, export_dirs)}

    # Then each row says where the text came from and who approved it (ids, not names)
    row = rows[child.pk]
    assert row["text"] == child.text
    assert row["origin"] == "synthetic"
    assert row["source"] == "books"
    assert row["generator"] == "gpt-x"
    assert row["generator_version"] == "2"
    assert row["generation"] == 1
    assert row["parents"] == [parent.pk]
    assert row["content_hash"] == content_hash(child.text)
    assert row["decision"]["reviewer_ids"] == [3, 9]
    assert row["decision"]["decided_at"]
    assert json.loads(row["metadata"]) == {"lang": "en", "tags": ["a", "b"]}
    assert row["scores"]["detector"] == "features"
    assert row["scores"]["detector_probability"] == 0.8
    assert row["scores"]["near_duplicate_of"] == parent.pk
    assert json.loads(row["scores"]["lexical"]) == {"distinct_1": 0.9}
    assert rows[parent.pk]["scores"] is None
    assert rows[parent.pk]["generator"] is None
    # and the two form one near-duplicate cluster in the manifest
    assert export.manifest["diversity"]["near_duplicates"] == {
        "clusters": 1,
        "items_in_clusters": 2,
        "largest": 2,
    }


def test_manifest_describes_the_file(dataset, export_dirs):
    # Given 4 synthetic and 2 human approved items
    approved_items(dataset, 4, origin="synthetic", generator_model="gpt")
    approved_items(dataset, 2, source="web", origin="human")

    # When exported
    export = build(dataset)
    manifest = export.manifest
    data = _file(export, export_dirs).read_bytes()
    rows = _rows(export, export_dirs)

    # Then the manifest's hashes are the file's, and its counts are the rows'
    assert manifest["file"]["sha256"] == hashlib.sha256(data).hexdigest() == export.sha256
    assert manifest["file"]["size"] == len(data) == export.size
    assert manifest["merkle"]["root"] == merkle_root(r["content_hash"] for r in rows)
    assert manifest["rows"] == 6
    assert manifest["counts"]["origin"] == {"human": 2, "synthetic": 4}
    assert manifest["counts"]["source"] == {"pipeline": 4, "web": 2}
    assert manifest["counts"]["generator"] == {"(none)": 2, "gpt": 4}
    assert manifest["synthetic_share"] == pytest.approx(4 / 6, abs=1e-6)
    assert manifest["policy"]["version"] == 0
    assert manifest["versions"]["scorer"] == {"(unscored)": 6}
    assert manifest["diversity"]["sample_rows"] == 6
    assert manifest["diversity"]["compression_ratio"] > 0
    assert 0 < manifest["diversity"]["distinct_2"] <= 1
    # the audit head recorded is a real link of the chain
    head = manifest["snapshot"]["audit_head"]
    assert AuditEvent.objects.get(seq=head["seq"]).hash == head["hash"]
    # and the audit log holds the same hashes, in an intact chain
    built = AuditEvent.objects.get(action="export.built", object_id=str(export.pk))
    assert built.payload["sha256"] == export.sha256
    assert built.payload["merkle_root"] == export.merkle_root
    assert audit_verify()[1] is None


def test_parquet_export_has_the_same_rows(dataset, export_dirs):
    import pyarrow.parquet as pq

    approved_items(dataset, 7)
    jsonl = build(dataset)
    parquet = build(dataset, format="parquet")
    assert parquet.status == Export.Status.READY, parquet.error
    table = pq.read_table(_file(parquet, export_dirs))
    assert table.to_pylist() == _rows(jsonl, export_dirs)
    assert parquet.merkle_root == jsonl.merkle_root
    assert parquet.sha256 == hashlib.sha256(_file(parquet, export_dirs).read_bytes()).hexdigest()


def test_caps_take_a_stratified_sample_and_the_manifest_says_what_was_left_out(
    dataset, export_dirs
):
    # Given 30 synthetic items and 10 human ones, and at most 50% synthetic
    synthetic = approved_items(dataset, 30, origin="synthetic")
    approved_items(dataset, 10, source="web", origin="human")
    policy_set(dataset=dataset, raw={"max_synthetic_share": 0.5, "seed": 4}, actor=SYSTEM)

    # When exported
    export = build(dataset)

    # Then 10 synthetic items stay and the other 20 are listed with the reason
    assert export.manifest["counts"]["origin"] == {"human": 10, "synthetic": 10}
    left = export.manifest["left_out"]
    assert left["total"] == 20
    assert left["by_reason"] == {"max_synthetic_share": 20}
    assert len(left["items"]["max_synthetic_share"]) == 20
    assert set(left["items"]["max_synthetic_share"]) <= {i.pk for i in synthetic}
    assert ExportItem.objects.filter(export=export, included=False).count() == 20
    assert export.manifest["policy"]["version"] == 1


def test_same_seed_same_sample_other_seed_other_sample(dataset, export_dirs):
    approved_items(dataset, 60, origin="synthetic")
    approved_items(dataset, 20, source="web", origin="human")

    def sample(seed: int) -> set[int]:
        policy_set(dataset=dataset, raw={"max_synthetic_share": 0.5, "seed": seed}, actor=SYSTEM)
        export = build(dataset)
        return {r["id"] for r in _rows(export, export_dirs)}

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_block_policy_fails_the_export_with_the_reason(dataset):
    approved_items(dataset, 3, origin="synthetic")
    approved_items(dataset, 1, source="web", origin="human")
    policy_set(
        dataset=dataset, raw={"max_synthetic_share": 0.5, "on_violation": "block"}, actor=SYSTEM
    )

    export = build(dataset)

    assert export.status == Export.Status.FAILED
    assert "max_synthetic_share" in export.error
    assert "75.0%" in export.error
    assert not ExportItem.objects.filter(export=export).exists()
    assert AuditEvent.objects.filter(action="export.failed", object_id=str(export.pk)).exists()


def test_depth_and_cluster_caps(dataset, export_dirs):
    # Given a chain of generations 0..3 and a near-duplicate cluster of three items
    deep = [approved_items(dataset, 1, generation=g)[0] for g in range(4)]
    a, b, c = approved_items(dataset, 3, generation=0)
    Score.objects.create(item=b, scorer_version="1", near_duplicate_of=a)
    Score.objects.create(item=c, scorer_version="1", near_duplicate_of=b)
    policy_set(dataset=dataset, raw={"max_generation": 2, "max_per_cluster": 1}, actor=SYSTEM)

    export = build(dataset)

    ids = {r["id"] for r in _rows(export, export_dirs)}
    assert deep[3].pk not in ids and deep[2].pk in ids
    assert len(ids & {a.pk, b.pk, c.pk}) == 1
    assert export.manifest["left_out"]["by_reason"] == {"max_generation": 1, "max_per_cluster": 2}


def test_delta_export_holds_only_what_was_approved_after_the_previous_one(dataset, export_dirs):
    first_items = approved_items(dataset, 3)
    first = build(dataset)
    later = approved_items(dataset, 2)

    delta = build(dataset, mode="delta")

    assert delta.since_id == first.pk
    assert [r["id"] for r in _rows(delta, export_dirs)] == [i.pk for i in later]
    full = build(dataset)
    assert len(_rows(full, export_dirs)) == len(first_items) + len(later)


def test_delta_takes_reference_items_loaded_after_the_previous_export(dataset, export_dirs):
    # Reference loads arrive approved (no review, so no feed entry of their own): a delta
    # finds the new ones by id, above the largest id of the previous snapshot.
    def reference():
        return ItemFactory(dataset=dataset, origin="human", is_reference=True, state="approved")

    reference()
    first = build(dataset)
    late_reference = reference()
    late_approval = approved_items(dataset, 1)[0]

    delta = build(dataset, mode="delta", since_id=first.pk)

    assert first.manifest["snapshot"]["max_item_id"] < late_reference.pk
    assert [r["id"] for r in _rows(delta, export_dirs)] == [late_reference.pk, late_approval.pk]


def test_retraction_leaves_later_exports_and_shows_in_the_next_manifest(dataset, export_dirs):
    items = approved_items(dataset, 3)
    first = build(dataset)
    item_retract(item_id=items[1].pk, reason="contains personal data", actor="user:1:admin")

    second = build(dataset)

    assert items[1].pk in {r["id"] for r in _rows(first, export_dirs)}
    assert items[1].pk not in {r["id"] for r in _rows(second, export_dirs)}
    retractions = second.manifest["retractions_since_previous"]
    assert retractions["previous_export"] == first.pk
    assert retractions["count"] == 1
    assert retractions["items"][0]["item_id"] == items[1].pk
    assert retractions["items"][0]["reason"] == "contains personal data"
    # the first export did not change
    assert Export.objects.get(pk=first.pk).sha256 == first.sha256


def test_a_ready_export_never_changes(dataset):
    approved_items(dataset, 2)
    export = build(dataset)

    export.error = "tampered"
    with pytest.raises(PermissionError):
        export.save()
    with pytest.raises(PermissionError):
        Export.objects.filter(pk=export.pk).update(manifest={})
    with pytest.raises(PermissionError):
        export.delete()
    with pytest.raises(PermissionError):
        Export.objects.filter(pk=export.pk).delete()
    with pytest.raises(PermissionError):
        ExportItem.objects.filter(export=export).update(included=False)
    with pytest.raises(PermissionError):
        ExportItem.objects.filter(export=export).delete()
    row = ExportItem.objects.filter(export=export).first()
    with pytest.raises(PermissionError):
        row.save()
    version = policy_set(dataset=dataset, raw={}, actor=SYSTEM).row
    with pytest.raises(PermissionError):
        version.save()
    assert Export.objects.get(pk=export.pk).error == ""


def test_building_twice_changes_nothing(dataset):
    approved_items(dataset, 2)
    export = build(dataset)
    events = AuditEvent.objects.count()

    assert export_build(export_id=export.pk) is None
    assert export_build(export_id=999_999) is None
    assert AuditEvent.objects.count() == events


def test_a_failure_marks_the_export_failed_with_the_reason(dataset, monkeypatch, export_dirs):
    items = approved_items(dataset, 2)

    def broken(self, lines):
        raise OSError("disk full")

    monkeypatch.setattr(build_module._Collector, "add", broken)
    export = build(dataset)

    assert export.status == Export.Status.FAILED
    assert "disk full" in export.error
    assert not ExportItem.objects.filter(export=export).exists()
    assert not list((export_dirs / "staging").iterdir())
    # its items can be undone again: a failed export holds nothing
    item_outcome_reopen(item_id=items[0].pk)


def test_a_stale_build_is_taken_over(dataset):
    approved_items(dataset, 2)
    export = export_request(dataset=dataset, actor=SYSTEM)
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.BUILDING,
        attempt="dead-worker",
        updated_at=timezone.now() - timedelta(hours=2),
    )

    built = export_build(export_id=export.pk)

    assert built.status == Export.Status.READY
    assert built.attempt != "dead-worker"


def test_a_live_build_is_left_alone(dataset):
    approved_items(dataset, 2)
    export = export_request(dataset=dataset, actor=SYSTEM)
    Export.objects.filter(pk=export.pk).update(status=Export.Status.BUILDING, attempt="alive")

    assert export_build(export_id=export.pk) is None
    assert Export.objects.get(pk=export.pk).attempt == "alive"


@pytest.mark.django_db(transaction=True)
def test_progress_is_reported_while_building(dataset, settings, monkeypatch):
    # Given batches of 2 rows and a clock that ticks 2 s per call
    approved_items(dataset, 5)
    settings.SYNTHGATE_EXPORT_BATCH = 2
    clock = iter(range(0, 10_000, 2))
    monkeypatch.setattr(build_module.time, "monotonic", lambda: next(clock))
    seen = []
    original = build_module._progress

    def spy(*, export, attempt, rows):
        seen.append(rows)
        original(export=export, attempt=attempt, rows=rows)

    monkeypatch.setattr(build_module, "_progress", spy)

    export = build(dataset)

    assert seen == [2, 4, 5, 5]
    assert export.rows_written == 5
    assert export.progress == 1.0


def test_undo_is_refused_once_the_item_is_exported(dataset):
    # Given an approved item that is in a ready export, and one approved after it
    exported, later = approved_items(dataset, 2)
    Item.objects.filter(pk=later.pk).update(state=Item.State.QUEUED)
    build(dataset)
    approve([later])

    # When review tries to undo both
    with pytest.raises(ItemStateError, match="part of export .* retract"):
        item_outcome_reopen(item_id=exported.pk)
    reopened = item_outcome_reopen(item_id=later.pk)

    # Then only the item outside any export goes back to the queue
    assert Item.objects.get(pk=exported.pk).state == Item.State.APPROVED
    assert reopened.state == Item.State.QUEUED


def test_gold_flag_is_refused_for_an_exported_item(dataset):
    item = approved_items(dataset, 1)[0]
    build(dataset)
    with pytest.raises(ItemStateError):
        item_gold_set(item_id=item.pk, is_gold=True)
    assert not Item.objects.get(pk=item.pk).is_gold


def test_retraction_needs_an_approved_item_and_a_reason(dataset):
    item = approved_items(dataset, 1)[0]
    queued = ItemFactory(dataset=dataset)
    with pytest.raises(ValueError, match="reason"):
        item_retract(item_id=item.pk, reason="  ", actor=SYSTEM)
    with pytest.raises(ItemStateError, match="only approved"):
        item_retract(item_id=queued.pk, reason="x", actor=SYSTEM)
    item_retract(item_id=item.pk, reason="x", actor=SYSTEM)
    with pytest.raises(ItemStateError):
        item_retract(item_id=item.pk, reason="again", actor=SYSTEM)
    assert AuditEvent.objects.filter(action="item.retracted").count() == 1


def test_export_policy_versions(dataset):
    first = policy_set(dataset=dataset, raw={"max_unknown_share": 0.1}, actor="token:1:root")
    second = policy_set(dataset=dataset, raw={"max_unknown_share": 0.2}, actor="token:1:root")
    assert (first.version, second.version) == (1, 2)
    assert ExportPolicy.objects.filter(dataset=dataset).count() == 2
    events = AuditEvent.objects.filter(action="export_policy.updated").order_by("seq")
    assert [e.payload["version"] for e in events] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_rows_stream_on_a_connection_of_their_own(
    dataset, settings, export_dirs
):
    # Given committed rows and batches of 4 (a worker runs the build outside any transaction:
    # PostgreSQL's COPY, or elsewhere a helper thread reading the next batch, then uses a
    # connection of its own)
    items = approved_items(dataset, 25)
    settings.SYNTHGATE_EXPORT_BATCH = 4

    export = build(dataset)

    assert export.status == Export.Status.READY, export.error
    assert [r["id"] for r in _rows(export, export_dirs)] == [i.pk for i in items]


@pytest.mark.skipif(
    connection.vendor == "postgresql", reason="PostgreSQL streams the rows with COPY instead"
)
@pytest.mark.django_db(transaction=True)
def test_a_read_ahead_failure_fails_the_export(dataset, settings, monkeypatch):
    from corpus.services.exports import rows

    approved_items(dataset, 10)
    settings.SYNTHGATE_EXPORT_BATCH = 4
    calls = []
    original = rows.rows_from_queryset

    def flaky(items, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise ConnectionError("server closed the connection")
        return original(items, **kwargs)

    monkeypatch.setattr(rows, "rows_from_queryset", flaky)

    export = build(dataset)

    assert export.status == Export.Status.FAILED
    assert "server closed the connection" in export.error
    assert calls == [f"export-{export.pk}-reader"] * 2  # read by the helper thread


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_postgres_renders_the_rows_exactly_as_the_python_encoder(dataset, export_dirs):
    # Given items with awkward texts, metadata, lineage and scores
    from corpus.services.exports.rows import rows_for_items

    source = SourceFactory(dataset=dataset, name='wéb \\ "quoted"')
    texts = [
        'quotes " and \\ backslashes \\n not a newline',
        "tab\tand newline\nand unicode: naïve café — 東京 🚀",
        "control-ish \u2028 line separator and \u00a0 nbsp",
    ]
    items = [
        ItemFactory(dataset=dataset, source=source, text=t, metadata=m, generator_model=g)
        for t, m, g in zip(
            texts,
            [{"a": [1, 2.5, None], "b": {"c": "ü"}}, {}, {"n": 10**15, "x": -0.0001}],
            ["", "gpt-x", "m\\1"],
            strict=True,
        )
    ]
    ItemParent.objects.create(child=items[2], parent=items[0])
    ItemParent.objects.create(child=items[2], parent=items[1])
    Score.objects.create(
        item=items[1],
        scorer_version="1",
        detector_name="features",
        detector_version="2",
        detector_probability=1 / 3,
        near_duplicate_of=items[0],
        near_duplicate_jaccard=0.1 + 0.2,
        lexical={"distinct_1": 1e-07, "n": 3},
        detectors={"features": {"probability": 1 / 3}},
    )
    approve(items, reviewer_ids=[5, 2])

    # When exported through COPY
    export = build(dataset)

    # Then every row equals what the Python encoder (the feed's, and SQLite's) gives
    assert _rows(export, export_dirs) == rows_for_items([i.pk for i in items])


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_postgres_parallel_streams_write_the_rows_in_order(dataset, settings, export_dirs, fmt):
    # Given 40 rows copied in three concurrent parts (the later two spooled to disk)
    from django.core.management import call_command

    items = approved_items(dataset, 40)
    settings.SYNTHGATE_EXPORT_STREAMS = 3
    settings.SYNTHGATE_EXPORT_STREAM_MIN_ROWS = 1
    settings.SYNTHGATE_EXPORT_BATCH = 7
    settings.SYNTHGATE_EXPORT_PARQUET_GROUP_ROWS = 10

    export = build(dataset, format=fmt)

    # Then the file holds every row once, in id order, and verifies
    assert export.status == Export.Status.READY, export.error
    if fmt == "jsonl":
        assert [r["id"] for r in _rows(export, export_dirs)] == [i.pk for i in items]
    call_command("verify_export", str(export.pk))
    assert not list((export_dirs / "staging").iterdir())  # spool files are gone


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broken_part", ["first", "spooled"])
def test_postgres_a_failing_stream_fails_the_export(
    dataset, settings, export_dirs, monkeypatch, broken_part
):
    # Given an export copied in three parts, one of which the database refuses
    from corpus.services.exports import rows as rows_module

    approved_items(dataset, 30)
    settings.SYNTHGATE_EXPORT_STREAMS = 3
    settings.SYNTHGATE_EXPORT_STREAM_MIN_ROWS = 1
    settings.SYNTHGATE_EXPORT_BATCH = 7
    if broken_part == "first":
        real_blocks = rows_module.postgres_line_blocks

        def broken_blocks(**kwargs):
            yield from real_blocks(**kwargs)
            raise RuntimeError("the first part broke")

        monkeypatch.setattr(rows_module, "postgres_line_blocks", broken_blocks)
    else:
        monkeypatch.setattr(
            rows_module, "postgres_copy_sql", lambda *args: "COPY (SELECT 1/0) TO STDOUT"
        )

    export = build(dataset, format="jsonl")

    # Then the export fails with the reason, keeps no file and leaves no spool behind
    assert export.status == Export.Status.FAILED
    assert ("the first part broke" if broken_part == "first" else "division by zero") in (
        export.error
    )
    assert not export.file
    assert not list((export_dirs / "staging").iterdir())


def test_the_sweep_re_enqueues_lost_and_abandoned_builds(dataset, monkeypatch):
    from corpus.tasks import exports_sweep_task

    approved_items(dataset, 1)
    old = timezone.now() - timedelta(hours=1)
    lost = export_request(dataset=dataset, actor=SYSTEM)
    abandoned = export_request(dataset=dataset, actor=SYSTEM)
    fresh = export_request(dataset=dataset, actor=SYSTEM)
    Export.objects.filter(pk=lost.pk).update(created_at=old)
    Export.objects.filter(pk=abandoned.pk).update(status="building", updated_at=old)
    queued: list[int] = []
    monkeypatch.setattr("corpus.tasks.export_build_task.delay", queued.append)

    assert exports_sweep_task() == 2

    assert sorted(queued) == sorted([lost.pk, abandoned.pk])
    assert fresh.pk not in queued
