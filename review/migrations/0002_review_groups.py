"""The two roles are Django groups; create them so a fresh install can assign them."""

from django.db import migrations

ROLES = ("reviewer", "admin")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("review", "0001_review_initial"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
