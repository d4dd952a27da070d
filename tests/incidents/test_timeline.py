from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from incidents.models import AppendOnlyError, TimelineEntry
from tests.factories import UserFactory, report

pytestmark = pytest.mark.django_db


def test_entries_cannot_be_updated_or_deleted_through_the_orm():
    entry = report().timeline.get()
    entry.public = False
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        TimelineEntry.objects.filter(pk=entry.pk).update(public=False)
    with pytest.raises(AppendOnlyError):
        TimelineEntry.objects.filter(pk=entry.pk).delete()
    assert TimelineEntry.objects.get(pk=entry.pk).public is True


def test_the_admin_shows_the_timeline_read_only():
    entry = report().timeline.get()
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_superuser=True, is_staff=True)
    model_admin = site._registry[TimelineEntry]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete_even_in_sql():
    entry = report().timeline.get()
    for sql in [
        "UPDATE incidents_timelineentry SET public = false WHERE id = %s",
        "DELETE FROM incidents_timelineentry WHERE id = %s",
    ]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert TimelineEntry.objects.get(pk=entry.pk).public is True
