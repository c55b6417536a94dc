# Less work per inserted item on PostgreSQL (bench/RESULTS.md, "Ingest over HTTP"), in the part
# of an ingest that runs under the audit lock, which bounds the throughput of the whole system.
#
# 1. One foreign key instead of two. Every inserted row queued a deferred check of its dataset_id
#    and one of its source_id, each a query run at commit: about 3.5 us of the backend's CPU per
#    check, 7 ms per 1,000 items. Now one composite key, (source_id, dataset_id) referencing
#    corpus_source (id, dataset_id), checks both at once, and more than before: the item's
#    dataset must be its source's (which ingest always wrote, and nothing checked). The source's
#    own foreign key guards its dataset, so an item still cannot name a missing dataset. Django
#    cannot declare a composite foreign key, so in its state both fields are db_constraint=False
#    and the constraint is this migration's SQL. SQLite keeps its two single-column foreign keys
#    (its schema is left as it is; a later table rebuild there would drop them).
# 2. Byte-order collation ("C") for content_hash and external_id: hex digests and opaque ids,
#    compared in btree indexes on every insert and lookup. Under a libc collation PostgreSQL 15
#    compares through strcoll and without abbreviated keys; "C" compares bytes. Measured on
#    this server (C.UTF-8, whose strcoll is close to strcmp) the gain is small; under
#    en_US.UTF-8, a common server default, it is larger. SQLite has no "C" collation and
#    already compares bytes (BINARY), so this is PostgreSQL only and not in Django's state: an
#    AlterField of these columns would have to say COLLATE "C" again.
# 3. item_dataset_hash, read by scoring's exact-duplicate lookup (dataset_id = ? AND content_hash
#    = ANY(?)), becomes a hash index on content_hash: a 4-byte hash code per entry instead of a
#    btree key of 64 characters under dataset_id, found without comparing strings; the COPY of
#    1,000 items cost the backend 2.7 ms less (bench/RESULTS.md). Equality is all anyone asks of
#    a digest; the dataset is then checked on the row (a text in several datasets is rare). It
#    keeps its name: Django's state still describes the btree (what SQLite keeps), and a later
#    RemoveIndex finds it by that name. The unique (dataset_id, content_hash) index of items without an external id stays a btree.
# 4. The (state, created_at) index served only the sweep of items stuck in pending: now a partial
#    index on created_at of pending items.
#
# On a large existing table this takes an ACCESS EXCLUSIVE lock on corpus_item while the new
# foreign key is validated and the indexes on the two columns are rebuilt.

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
ALTER TABLE corpus_source ADD CONSTRAINT source_unique_id_dataset UNIQUE (id, dataset_id);
ALTER TABLE corpus_item
    ADD CONSTRAINT item_source_in_dataset_fk FOREIGN KEY (source_id, dataset_id)
    REFERENCES corpus_source (id, dataset_id) DEFERRABLE INITIALLY DEFERRED;
DROP INDEX item_dataset_hash;
CREATE INDEX item_dataset_hash ON corpus_item USING hash (content_hash);
ALTER TABLE corpus_item
    ALTER COLUMN content_hash TYPE varchar(64) COLLATE "C",
    ALTER COLUMN external_id TYPE varchar(200) COLLATE "C";
"""
BACKWARD = """
DROP INDEX item_dataset_hash;
CREATE INDEX item_dataset_hash ON corpus_item (dataset_id, content_hash);
ALTER TABLE corpus_item
    ALTER COLUMN content_hash TYPE varchar(64) COLLATE "default",
    ALTER COLUMN external_id TYPE varchar(200) COLLATE "default";
ALTER TABLE corpus_item ADD CONSTRAINT corpus_item_dataset_id_fk_corpus_dataset_id
    FOREIGN KEY (dataset_id) REFERENCES corpus_dataset (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE corpus_item ADD CONSTRAINT corpus_item_source_id_fk_corpus_source_id
    FOREIGN KEY (source_id) REFERENCES corpus_source (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE corpus_item DROP CONSTRAINT item_source_in_dataset_fk;
ALTER TABLE corpus_source DROP CONSTRAINT source_unique_id_dataset;
"""


def forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(FORWARD)
    # The single-column keys carry names Django generated (with a hash); found by introspection.
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "corpus_item")
    for name, info in constraints.items():
        if info["foreign_key"] and info["columns"] in (["dataset_id"], ["source_id"]):
            schema_editor.execute(
                f"ALTER TABLE corpus_item DROP CONSTRAINT {connection.ops.quote_name(name)}"
            )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0011_item_fewer_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="item",
                    name="dataset",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="items",
                        to="corpus.dataset",
                    ),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="source",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="items",
                        to="corpus.source",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
        migrations.RemoveIndex(model_name="item", name="item_state_created"),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["created_at"],
                name="item_pending_created",
            ),
        ),
    ]
