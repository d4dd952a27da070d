"""The session engines of accounts.sessions: Django's `db` and `cached_db` with the database read written out
once. An expired or missing session is no session, whichever engine reads it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone

from accounts.sessions import cached_db, db
from tests.factories import agent

pytestmark = pytest.mark.django_db

ENGINES = [db, cached_db]


def _expire(session_key: str) -> None:
    Session.objects.filter(session_key=session_key).update(expire_date=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("engine", ENGINES, ids=["db", "cached_db"])
def test_a_saved_session_reads_back_with_its_expiry(engine):
    store = engine.SessionStore()
    store["answer"] = 42
    store.set_expiry(600)
    store.save()
    caches["default"].clear()  # cached_db: from the database

    again = engine.SessionStore(store.session_key)
    assert again["answer"] == 42
    assert again.session_key == store.session_key
    assert 590 <= again.get_expiry_age() <= 600
    if engine is cached_db:  # put back in the cache until the row's expiry
        assert caches["default"].get(again.cache_key) == {"answer": 42, "_session_expiry": 600}


@pytest.mark.parametrize("engine", ENGINES, ids=["db", "cached_db"])
def test_an_expired_session_is_empty_and_a_save_makes_a_new_key(engine):
    store = engine.SessionStore()
    store["answer"] = 42
    store.save()
    old_key = store.session_key
    _expire(old_key)
    caches["default"].clear()

    again = engine.SessionStore(old_key)
    assert "answer" not in again
    assert again.session_key is None  # forgotten, as Django's read forgets it
    again["other"] = 1
    again.save()
    assert again.session_key != old_key


@pytest.mark.parametrize("engine", ENGINES, ids=["db", "cached_db"])
def test_an_unknown_key_is_an_empty_session(engine):
    store = engine.SessionStore("x" * 32)
    assert dict(store.items()) == {}
    assert store.session_key is None


@pytest.mark.parametrize("engine", ENGINES, ids=["db", "cached_db"])
def test_cycle_key_keeps_the_data_under_a_new_key_and_flush_ends_it(engine):
    store = engine.SessionStore()
    store["answer"] = 42
    store.save()
    old_key = store.session_key
    store.cycle_key()
    assert store.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    caches["default"].clear()
    assert engine.SessionStore(store.session_key)["answer"] == 42

    new_key = store.session_key
    store.flush()
    assert not Session.objects.filter(session_key=new_key).exists()
    assert dict(engine.SessionStore(new_key).items()) == {}


@pytest.mark.parametrize("engine", ["accounts.sessions.db", "accounts.sessions.cached_db"])
def test_a_signed_in_console_page_ends_when_its_session_expires(client, engine):
    with override_settings(SESSION_ENGINE=engine):
        client.force_login(agent())
        assert client.get("/desk/").status_code == 200
        _expire(client.session.session_key)
        caches["default"].clear()
        response = client.get("/desk/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
