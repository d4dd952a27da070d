"""Accounts (issue 11, item 6): API tokens listed and revoked by their owner and admins, revoked by a password
change; sign-in lockout on the token endpoint, the web login and the admin login; Redis as the cache in
production; a signed-in reporter's `reporter_email` is their own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import ApiToken
from incidents.models import Incident
from tests.conftest import client_for, require_service
from tests.factories import TeamFactory, UserFactory, agent
from tests.incidents.test_views import form_token

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-2026"


def _token(client: APIClient, username: str, password: str = PASSWORD, **extra):
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password, **extra}, format="json"
    )


def test_each_sign_in_makes_a_named_token_stored_only_as_a_hash():
    user = UserFactory(username="bob")
    api = APIClient()

    first = _token(api, "bob", name="nightly export").json()
    second = _token(api, "bob").json()

    assert first["token"] != second["token"]
    rows = ApiToken.objects.filter(user=user)
    assert {t.name for t in rows} == {"nightly export", "api"}
    assert all(first["token"] not in (t.key_hash, t.prefix) for t in rows)
    api.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    assert api.get("/api/v1/me/").json()["username"] == "bob"


def test_owner_lists_and_revokes_their_tokens():
    user = UserFactory(username="carol")
    api = APIClient()
    key = _token(api, "carol").json()["token"]
    other = _token(api, "carol", name="other").json()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    listed = api.get("/api/v1/me/tokens/").json()
    assert sorted(t["name"] for t in listed) == ["api", "other"]
    assert all("token" not in t and len(t["prefix"]) == 8 for t in listed)

    assert api.delete(f"/api/v1/me/tokens/{other['id']}/").status_code == 204
    assert api.delete(f"/api/v1/me/tokens/{other['id']}/").status_code == 404
    assert [t["name"] for t in api.get("/api/v1/me/tokens/").json()] == ["api"]
    audit = LogEntry.objects.filter(user=user, action_flag=3).get()
    assert audit.object_id == str(other["id"])


def test_someone_elses_token_is_not_found_for_a_non_admin():
    owner, stranger = UserFactory(), UserFactory()
    token, _ = ApiToken.issue(owner)

    assert client_for(stranger).delete(f"/api/v1/me/tokens/{token.pk}/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_admin_lists_and_revokes_a_persons_tokens():
    owner = UserFactory(username="dave")
    token, key = ApiToken.issue(owner, name="script")
    admin = client_for(UserFactory(is_staff=True))

    assert [t["name"] for t in admin.get("/api/v1/users/dave/tokens/").json()] == ["script"]
    assert admin.delete(f"/api/v1/users/dave/tokens/{token.pk}/").status_code == 204

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 401


def test_a_password_change_revokes_every_token():
    user = UserFactory(username="erin")
    api = APIClient()
    key = _token(api, "erin").json()["token"]
    _token(api, "erin")
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 200

    user.set_password("a-new-long-password-2026")
    user.save()

    assert api.get("/api/v1/me/").status_code == 401
    assert not ApiToken.objects.filter(user=user).exists()


def test_the_web_password_change_form_revokes_tokens(client):
    user = UserFactory(username="frank")
    ApiToken.issue(user)
    client.force_login(user)

    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "x9-brand-new-secret",
            "new_password2": "x9-brand-new-secret",
        },
    )

    assert response.status_code == 302
    assert not ApiToken.objects.filter(user=user).exists()


def test_saving_a_person_without_a_new_password_keeps_their_tokens():
    user = UserFactory()
    ApiToken.issue(user)
    user.first_name = "Still"
    user.save()
    assert ApiToken.objects.filter(user=user).count() == 1


def test_token_endpoint_locks_out_after_repeated_failures(settings):
    UserFactory(username="gina")
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _token(api, "gina", "wrong").status_code == 400

    locked = _token(api, "gina", "wrong")
    assert locked.status_code == 429
    assert locked.json()["code"] == "throttled"
    # Locked out, the right password does not help either until the cool-off has passed.
    assert _token(api, "gina").status_code == 429
    # The lockout is per username and address: another person from the same address may still sign in.
    UserFactory(username="hank")
    assert _token(api, "hank").status_code == 200


def test_web_login_locks_out_after_repeated_failures(client, settings):
    UserFactory(username="ivy")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "ivy", "password": "wrong"})

    response = client.post("/accounts/login/", {"username": "ivy", "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_login_locks_out_after_repeated_failures(client, settings):
    UserFactory(username="jack", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "jack", "password": "wrong"})

    response = client.post("/admin/login/", {"username": "jack", "password": PASSWORD})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_production_settings_keep_throttles_and_lockouts_in_redis():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "desk.example.org",
        "REDIS_URL": "redis://127.0.0.1:6379/6",
    }
    env.pop("CACHE_URL", None)
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.CACHES['default']['BACKEND'], s.AXES_HANDLER)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "axes.handlers.cache.AxesCacheHandler",
    ]

    env.pop("REDIS_URL")
    refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "Production needs CACHE_URL" in refused.stderr


def test_signed_in_reporter_cannot_point_mail_at_another_address():
    reporter = UserFactory(email="me@example.org")
    client = client_for(reporter)

    refused = client.post(
        "/api/v1/incidents/", {"title": "Printer", "reporter_email": "victim@example.com"}, format="json"
    )
    assert refused.status_code == 400
    assert "reporter_email" in refused.json()

    own = client.post(
        "/api/v1/incidents/", {"title": "Printer", "reporter_email": "ME@example.org"}, format="json"
    )
    assert own.status_code == 201
    assert Incident.objects.get().reporter_email.lower() == "me@example.org"


def test_a_responder_may_record_a_report_for_a_caller():
    desk = agent(TeamFactory())
    response = client_for(desk).post(
        "/api/v1/incidents/",
        {"title": "Caller's laptop", "reporter_email": "caller@example.com"},
        format="json",
    )
    assert response.status_code == 201
    assert Incident.objects.get().reporter_email == "caller@example.com"


def test_web_form_ignores_a_reporter_email_posted_by_a_signed_in_reporter(client):
    reporter = UserFactory(email="me@example.org")
    client.force_login(reporter)
    mail.outbox.clear()

    client.post(
        "/report/",
        {
            "title": "Projector broken",
            "reporter_email": "victim@example.com",
            "form_token": form_token(client),
        },
    )

    assert Incident.objects.get().reporter_email == "me@example.org"


def _redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6")


@pytest.fixture
def redis_cache(settings):
    """The production arrangement: a real Redis as the cache, django-axes counting in it."""
    import redis

    client = redis.Redis.from_url(_redis_url(), socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        require_service("Redis", False, f"{_redis_url()}: {error}")
    client.flushdb()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url()}
    }
    settings.AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
    yield client
    client.flushdb()


def test_lockout_and_throttles_are_counted_in_redis(redis_cache, settings):
    """Counted in Redis, every web process sees the same failures (an in-process cache would count per process)."""
    UserFactory(username="kate")
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _token(api, "kate", "wrong").status_code == 400
    assert _token(api, "kate", "wrong").status_code == 429
    assert any(b"axes" in key for key in redis_cache.keys("*"))

    # What another process would see: the count is in Redis, not in this process. Clearing this process's
    # handler and cache connections changes nothing.
    from axes.handlers.proxy import AxesProxyHandler
    from django.core.cache import caches

    caches["default"].close()
    AxesProxyHandler.get_implementation(force=True)
    assert _token(api, "kate").status_code == 429

    client_for(UserFactory()).get("/api/v1/me/")
    assert any(b"throttle_user" in key for key in redis_cache.keys("*"))
