"""Tokens issued before accounts.ApiToken (DRF's authtoken, one per person) keep working: their keys are
hashed into ApiToken rows and the plain-text keys are removed."""

import hashlib

from django.db import migrations


def forwards(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for old in Token.objects.all().iterator():
        ApiToken.objects.get_or_create(
            key_hash=hashlib.sha256(old.key.encode()).hexdigest(),
            defaults={
                "user_id": old.user_id,
                "name": "api",
                "prefix": old.key[:8],
                "created_at": old.created,
            },
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
