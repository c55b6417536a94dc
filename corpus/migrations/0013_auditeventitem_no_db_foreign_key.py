# Less work under the audit chain lock (bench/RESULTS.md, "Ingest over HTTP"): the deferred
# foreign-key check of AuditEventItem.event_id ran one query per row at commit, 1,000 per ingest
# request of 1,000 items, while every other ingest and review decision waited on the lock. In
# process, 5 + 5 alternated requests on fresh databases (load 0.4 - 0.9): commit 8.6 -> 5.3 ms,
# lock held 30.3 -> 26.8 ms, PostgreSQL backend CPU 26.3 -> 23.5 ms per request.
#
# The rows are derived from their event (the item ids its hashed payload names), written only by
# corpus.services.audit.audit_append_many in the event's own transaction, after the guarded head
# update; events can be neither updated nor deleted (the triggers of migration 0006). So the key
# could only ever catch a bug in that one function, whose tests cover the rows it writes.
#
# PostgreSQL only. On SQLite, Django would rebuild the table to drop a foreign key, and the
# rebuild would drop the append-only triggers of migration 0006 with it; SQLite keeps its key
# (Django's state says db_constraint=False, so a later rebuild there would drop it).

import django.db.models.deletion
from django.db import migrations, models


def forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "corpus_auditeventitem")
    for name, info in constraints.items():
        if info["foreign_key"] and info["columns"] == ["event_id"]:
            schema_editor.execute(
                "ALTER TABLE corpus_auditeventitem DROP CONSTRAINT "
                + connection.ops.quote_name(name)
            )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE corpus_auditeventitem ADD CONSTRAINT auditeventitem_event_fk "
            "FOREIGN KEY (event_id) REFERENCES corpus_auditevent (seq) "
            "DEFERRABLE INITIALLY DEFERRED"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0012_item_one_foreign_key_collation_c"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditeventitem",
                    name="event",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="item_refs",
                        to="corpus.auditevent",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
