# Fewer indexes to maintain on every item insert (bench/RESULTS.md, "Ingest over HTTP"): the
# single-column foreign key indexes go; composite indexes lead with dataset_id, and the
# (source, external_id) unique constraint, no longer partial, holds every row and so covers
# source_id (NULL external ids are distinct, so what it refuses is unchanged).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0010_exports_rows_composite_pk"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="item",
            name="item_unique_source_external_id",
        ),
        migrations.AlterField(
            model_name="item",
            name="dataset",
            field=models.ForeignKey(
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
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="items",
                to="corpus.source",
            ),
        ),
        migrations.AddConstraint(
            model_name="item",
            constraint=models.UniqueConstraint(
                fields=("source", "external_id"), name="item_unique_source_external_id"
            ),
        ),
    ]
