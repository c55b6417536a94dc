# Written by hand: Django cannot migrate a table to a composite primary key in place, so the
# export rows table is recreated (its rows belong to exports that are rebuilt from the corpus).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0009_audit_fewer_indexes"),
    ]

    operations = [
        migrations.DeleteModel(
            name="ExportItem",
        ),
        migrations.CreateModel(
            name="ExportItem",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "export",
                        "item",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "export",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rows",
                        to="corpus.export",
                    ),
                ),
                (
                    "item",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="export_rows",
                        to="corpus.item",
                    ),
                ),
                ("included", models.BooleanField(default=True)),
                ("reason", models.CharField(blank=True, max_length=500)),
            ],
        ),
    ]
