from __future__ import annotations

import importlib

import pytest


@pytest.fixture(autouse=True)
def _default_rubric_after_flush(request):
    """Transactional tests (the live server) start after other tests' flushes, which remove the rubric that
    a data migration seeds. Put it back before each such test, as the incidents tests do for domains."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    importlib.import_module("interviews.migrations.0002_default_rubric").create(apps, None)
