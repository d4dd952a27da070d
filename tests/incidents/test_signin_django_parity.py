"""incidents.signin against Django's own `get_user`, state by state: the same person (every field, with the
ORM's types), or the same anonymity, and the same effect on the session (kept, cycled, flushed). Then the
paths around it: laziness, two people served by one process, a demoted superuser, staff taken away, the
API's session authentication, a password changed by its owner, a login, and `cached_db` on Redis."""

from __future__ import annotations

from importlib import import_module

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from accounts.sessions import cached_db
from config.dbrouter import reports_reads
from incidents import signin
from incidents.models import Incident, Membership
from incidents.selectors import desk_user
from tests.conftest import require_service
from tests.factories import TeamFactory, UserFactory, agent, incident_in

pytestmark = pytest.mark.django_db

User = get_user_model()
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
OLD_SECRET = "old-secret-key-for-this-test-0123456789abcdef"
NEW_SECRET = "new-secret-key-for-this-test-0123456789abcdef"


def _session_for(user, *, backend: str | None = MODEL_BACKEND, hash_value: str | None = "current"):
    """A saved session as `login()` leaves it (optionally with another backend, or hash)."""
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore()
    store[auth.SESSION_KEY] = str(user.pk)
    if backend is not None:
        store[auth.BACKEND_SESSION_KEY] = backend
    if hash_value == "current":
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    elif hash_value is not None:
        store[HASH_SESSION_KEY] = hash_value
    store["other"] = "kept"
    store.save()
    return store.session_key


def _request(session_key):
    request = RequestFactory().get("/desk/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return request


def _outcome(get_user, session_key):
    """What `get_user` makes of the session: the person (every field's value and type), and the session."""
    request = _request(session_key)
    user = get_user(request)
    fields = (
        None
        if isinstance(user, AnonymousUser)
        else {
            f.attname: (getattr(user, f.attname), type(getattr(user, f.attname)))
            for f in User._meta.concrete_fields
        }
    )
    stored = Session.objects.filter(session_key=request.session.session_key).exists()
    return {
        "anonymous": isinstance(user, AnonymousUser),
        "fields": fields,
        "key_kept": request.session.session_key == session_key,
        "old_row": Session.objects.filter(session_key=session_key).exists(),
        "new_row": stored if request.session.session_key != session_key else None,
        "hash": request.session.get(HASH_SESSION_KEY),
        "other": request.session.get("other"),
    }


def _compare(make_session):
    """Each get_user on its own copy of the same state."""
    theirs = _outcome(auth.get_user, make_session())
    ours = _outcome(signin.get_user, make_session())
    if not theirs["key_kept"]:  # a cycled key is a new random key: compare that it was cycled
        assert not ours["key_kept"]
    assert ours == theirs
    return ours


def _superuser():
    return UserFactory(is_superuser=True, is_staff=True)


STATES = {
    "signed in": lambda u: _session_for(u),
    "no hash": lambda u: _session_for(u, hash_value=None),
    "empty hash": lambda u: _session_for(u, hash_value=""),
    "wrong hash": lambda u: _session_for(u, hash_value="0" * 64),
    "backend unknown": lambda u: _session_for(u, backend="some.removed.Backend"),
    "no backend": lambda u: _session_for(u, backend=None),
}


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("who", ["agent", "superuser", "inactive", "no last login", "deleted"])
def test_the_same_outcome_as_djangos_get_user(state, who):
    if who == "superuser":
        user = _superuser()
    elif who == "inactive":
        user = agent(is_active=False)
    elif who == "no last login":
        user = agent()
        User.objects.filter(pk=user.pk).update(last_login=None)
    else:
        user = agent()
    make = STATES[state]
    if who == "deleted":
        sessions = iter([make(user), make(user)])
        User.objects.filter(pk=user.pk).delete()
        result = _compare(lambda: next(sessions))
        assert result["anonymous"]
        return
    result = _compare(lambda: make(user))
    assert result["anonymous"] == (who == "inactive" or state != "signed in")


def test_the_same_outcome_for_a_hash_of_a_fallback_secret_key():
    user = agent()
    with override_settings(SECRET_KEY=OLD_SECRET):
        old_hash = user.get_session_auth_hash()
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        result = _compare(lambda: _session_for(user, hash_value=old_hash))
        assert not result["anonymous"]
        assert not result["key_kept"]  # cycled
        assert result["hash"] == user.get_session_auth_hash()
        assert result["other"] == "kept"
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[]):
        assert _compare(lambda: _session_for(user, hash_value=old_hash))["anonymous"]


def test_no_session_and_no_user_key_are_anonymous_without_reading_a_person():
    with CaptureQueriesContext(connection) as queries:
        theirs = _outcome(auth.get_user, None)
        ours = _outcome(signin.get_user, None)
    assert ours == theirs
    assert ours["anonymous"]
    assert not [q for q in queries.captured_queries if '"auth_user"' in q["sql"]]


def test_the_middleware_reads_nothing_until_the_user_is_asked_for():
    user = agent()
    request = _request(_session_for(user))
    with CaptureQueriesContext(connection) as queries:
        signin.AuthenticationMiddleware(lambda r: HttpResponse())(request)
    assert queries.captured_queries == []
    with CaptureQueriesContext(connection) as queries:
        assert request.user.pk == user.pk
        assert request.user.pk == user.pk  # read once
    assert len(queries.captured_queries) == 2  # the session, then the person with their roles


def test_auser_agrees_with_user():
    """`request.auser()` stays Django's: it sees the same person, and the same anonymity when inactive."""
    user = agent()
    active = _request(_session_for(user))
    signin.AuthenticationMiddleware(lambda r: HttpResponse())(active)
    assert active.user.pk == user.pk
    assert async_to_sync(active.auser)().pk == user.pk
    User.objects.filter(pk=user.pk).update(is_active=False)
    inactive = _request(_session_for(user))
    signin.AuthenticationMiddleware(lambda r: HttpResponse())(inactive)
    assert isinstance(inactive.user, AnonymousUser)
    assert isinstance(async_to_sync(inactive.auser)(), AnonymousUser)


def test_anonymous_pages_read_no_person(client):
    for page in ("/accounts/login/", "/"):
        with CaptureQueriesContext(connection) as queries:
            client.get(page)
        assert not [q for q in queries.captured_queries if '"auth_user"' in q["sql"]], page


def test_two_people_in_turn_each_get_their_own_roles(client):
    """No per-process memo of one person's roles serves another: a superuser and a plain agent in turn."""
    incident = incident_in(Incident.State.RESPONDING, domain_slug="security")
    page = f"/desk/incidents/{incident.reference}/"
    boss, plain = _superuser(), agent(TeamFactory(domains=["it_service"]))
    boss_client, plain_client = Client(), Client()
    boss_client.force_login(boss)
    plain_client.force_login(plain)
    for _ in range(3):
        assert boss_client.get(page).status_code == 200
        assert plain_client.get(page).status_code == 404


def test_a_demoted_superuser_loses_reach_and_admin_on_the_next_request(client):
    incident = incident_in(Incident.State.RESPONDING, domain_slug="security")
    page = f"/desk/incidents/{incident.reference}/"
    user = _superuser()
    client.force_login(user)
    assert client.get(page).status_code == 200
    assert client.get("/admin/").status_code == 200
    User.objects.filter(pk=user.pk).update(is_superuser=False)
    assert client.get(page).status_code == 404
    User.objects.filter(pk=user.pk).update(is_staff=False)
    assert client.get("/admin/").status_code == 302


def test_two_roles_at_once_a_group_permission_and_two_teams(client):
    reporter = UserFactory(first_name="Quentin", last_name="Quiet")
    confidential = incident_in(Incident.State.RESPONDING, reporter=reporter, confidential=True)
    restricted = incident_in(Incident.State.RESPONDING, domain_slug="security")
    user = agent(TeamFactory(domains=["it_service"]))
    agent(TeamFactory(domains=["security"]))  # another person's team
    client.force_login(user)
    assert client.get(f"/desk/incidents/{restricted.reference}/").status_code == 404
    group = Group.objects.create(name="privacy")
    group.permissions.add(Permission.objects.get(codename="view_confidential_reporter"))
    user.groups.add(group)
    Membership.objects.create(user=user, team=TeamFactory(domains=["security"]))
    assert reporter.username in client.get(f"/desk/incidents/{confidential.reference}/").content.decode()
    assert client.get(f"/desk/incidents/{restricted.reference}/").status_code == 200
    me = desk_user(signin.user_with_roles(user.pk))
    assert me.sees_confidential
    assert len(me.team_ids) == 2
    user.groups.clear()
    assert reporter.username not in client.get(f"/desk/incidents/{confidential.reference}/").content.decode()


def test_the_api_with_a_session_follows_the_same_rules(client):
    user = agent()
    client.force_login(user)
    assert client.get("/api/v1/incidents/").status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/v1/incidents/").status_code in (401, 403)
    User.objects.filter(pk=user.pk).update(is_active=True)
    assert client.get("/api/v1/incidents/").status_code == 200
    user.set_password("another-long-password-2026")
    user.save()
    assert client.get("/api/v1/incidents/").status_code in (401, 403)


def test_a_password_changed_by_its_owner_keeps_this_session_and_ends_the_others(client):
    user = agent()
    client.force_login(user)
    other = Client()
    other.force_login(user)
    old_key = client.session.session_key
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-for-tests-2026",
            "new_password1": "a-new-long-password-2026",
            "new_password2": "a-new-long-password-2026",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert client.session.session_key != old_key  # update_session_auth_hash cycles the key
    assert client.get("/desk/").status_code == 200
    assert other.get("/desk/").status_code == 302


def test_a_login_cycles_the_session_key(client):
    user = agent()
    client.get("/accounts/login/")
    session = client.session
    session["before"] = 1
    session.save()
    before = session.session_key
    response = client.post("/accounts/login/", {"username": user.username, "password": "pw-for-tests-2026"})
    assert response.status_code == 302
    assert client.session.session_key != before
    assert client.get("/desk/").status_code == 200


def _redis_sessions():
    url = "redis://127.0.0.1:6379/7"
    try:
        redis.Redis.from_url(url).ping()
        up = True
    except Exception:
        up = False
    require_service("Redis", up, "on 127.0.0.1:6379")
    return override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                            "KEY_PREFIX": "idesk_rt_test"}},
        SESSION_ENGINE="accounts.sessions.cached_db",
    )  # fmt: skip


def test_cached_db_on_redis_logout_elsewhere_and_password_change_elsewhere():
    with _redis_sessions():
        caches["default"].clear()
        user = agent()
        tab, other_tab = Client(), Client()
        tab.force_login(user)
        other_tab.cookies = tab.cookies  # the same session, another tab
        assert tab.get("/desk/").status_code == 200
        assert other_tab.post("/accounts/logout/").status_code in (200, 302)
        assert tab.get("/desk/").status_code == 302  # the cache does not keep it alive

        tab.force_login(user)
        laptop = Client()
        laptop.force_login(user)
        assert laptop.get("/desk/").status_code == 200  # cached now
        user.set_password("another-long-password-2026")
        user.save()
        key = laptop.session.session_key
        assert laptop.get("/desk/").status_code == 302
        assert caches["default"].get(cached_db.SessionStore.cache_key_prefix + key) is None
        assert not Session.objects.filter(session_key=key).exists()
        caches["default"].clear()


def test_cached_db_on_redis_a_database_read_fills_the_cache_until_the_rows_expiry(client):
    with _redis_sessions():
        caches["default"].clear()
        user = agent()
        client.force_login(user)
        key = client.session.session_key
        caches["default"].clear()  # the cache lost it: read from the database, written back
        assert client.get("/desk/").status_code == 200
        data = caches["default"].get(cached_db.SessionStore.cache_key_prefix + key)
        assert data is not None
        assert data[auth.SESSION_KEY] == str(user.pk)
        redis_client = caches["default"]._cache.get_client()
        ttl = redis_client.ttl(
            caches["default"].make_and_validate_key(cached_db.SessionStore.cache_key_prefix + key)
        )
        assert settings.SESSION_COOKIE_AGE - 60 <= ttl <= settings.SESSION_COOKIE_AGE
        Session.objects.filter(session_key=key).delete()
        caches["default"].clear()
        assert client.get("/desk/").status_code == 302


def test_a_locked_out_sign_in_stays_anonymous(client):
    """django-axes refuses the right password after AXES_FAILURE_LIMIT failures: no session is signed in."""
    user = agent()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": user.username, "password": "wrong-password"})
    response = client.post("/accounts/login/", {"username": user.username, "password": "pw-for-tests-2026"})
    assert response.status_code == 429
    assert auth.SESSION_KEY not in client.session
    assert client.get("/desk/").status_code == 302


@pytest.mark.django_db(databases=["default", "reports"])
@override_settings(REPORTS_DATABASE_ALIAS="reports")
def test_a_person_first_asked_for_inside_a_reports_block_gets_the_primarys_roles():
    """Django reads the person through the router and their roles (desk_user) from the primary: a request
    whose user is first asked for inside `reports_reads()` must not take its roles from the replica."""
    user = agent(TeamFactory(domains=["security"]))
    User.objects.using("reports").create(
        pk=user.pk, username=user.username, password=user.password
    )  # no teams
    seen = {}
    for name, get_user in (("django", auth.get_user), ("signin", signin.get_user)):
        request = _request(_session_for(user))
        assert auth.SESSION_KEY in request.session  # the session read before, on the primary
        with reports_reads():
            person = get_user(request)
        seen[name] = desk_user(person).team_ids
    assert seen["signin"] == seen["django"]
    assert seen["django"]
