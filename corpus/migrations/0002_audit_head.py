from django.db import migrations


def create_head(apps, schema_editor):
    # The chain head row exists from the start, so every append can lock it with
    # SELECT ... FOR UPDATE instead of racing on its creation.
    apps.get_model("corpus", "AuditHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("corpus", "0001_initial")]

    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
