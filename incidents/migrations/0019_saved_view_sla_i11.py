"""Saved queue views made before the SLA filter used the escalation engine's clock states carry `sla=soon`.
The console no longer translates it (issue 11 deletes LEGACY_SLA), so the stored queries are rewritten to
`sla=warning`, what `soon` meant. Running it twice changes nothing the second time."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.db import migrations


def rewrite_sla_soon(apps: Any, schema_editor: Any) -> None:
    saved_view = apps.get_model("incidents", "SavedQueueView")
    for view in saved_view.objects.filter(query__contains="sla=soon").only("pk", "query"):
        pairs = parse_qsl(view.query, keep_blank_values=True)
        rewritten = [(key, "warning" if key == "sla" and value == "soon" else value) for key, value in pairs]
        if rewritten != pairs:
            view.query = urlencode(rewritten)
            view.save(update_fields=["query"])


class Migration(migrations.Migration):
    dependencies = [("incidents", "0018_merge_mail")]

    operations = [migrations.RunPython(rewrite_sla_soon, migrations.RunPython.noop, elidable=True)]
