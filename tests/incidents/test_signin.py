"""incidents.signin: the signed-in person and their roles read by one statement, with every rule of Django's
`get_user` kept (a password changed elsewhere, an inactive person, a fallback secret key) and the roles read
again on every request."""

from __future__ import annotations

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from incidents.models import Incident, Membership
from tests.factories import TeamFactory, UserFactory, agent, incident_in

pytestmark = pytest.mark.django_db


def _signed_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_user_and_the_roles_are_one_statement(client):
    client.force_login(agent())
    client.get("/desk/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/desk/").status_code == 200
    users = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "auth_user"')]
    roles = [q["sql"] for q in queries.captured_queries if "incidents_membership m" in q["sql"]]
    assert len(users) == 1
    assert roles == users


def test_a_password_change_elsewhere_signs_this_session_out(client):
    user = agent()
    client.force_login(user)
    assert client.get("/desk/").status_code == 200
    session_key = client.session.session_key
    user.set_password("another-long-password-2026")
    user.save()
    assert _signed_out(client.get("/desk/"))
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=session_key).exists()  # flushed, as Django does


def test_a_session_without_its_hash_is_signed_out(client):
    client.force_login(agent())
    session = client.session
    del session[HASH_SESSION_KEY]
    session.save()
    assert _signed_out(client.get("/desk/"))


def test_an_inactive_person_is_anonymous(client):
    user = agent()
    client.force_login(user)
    assert client.get("/desk/").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert _signed_out(client.get("/desk/"))


def test_a_deleted_person_is_anonymous(client):
    user = agent()
    client.force_login(user)
    user.delete()
    assert _signed_out(client.get("/desk/"))


def test_a_session_of_the_previous_secret_key_is_moved_to_the_new_one(client):
    with override_settings(SECRET_KEY="old-secret-key-for-this-test-0123456789"):
        client.force_login(agent())
        old_key = client.session.session_key
    with override_settings(
        SECRET_KEY="new-secret-key-for-this-test-0123456789",
        SECRET_KEY_FALLBACKS=["old-secret-key-for-this-test-0123456789"],
    ):
        assert client.get("/desk/").status_code == 200
        assert client.session.session_key != old_key  # cycled, as Django does
        assert client.get("/desk/").status_code == 200
    with override_settings(SECRET_KEY="another-secret-key-for-this-test-0123456789"):
        assert _signed_out(client.get("/desk/"))


def test_a_team_taken_away_takes_effect_on_the_next_request(client):
    incident = incident_in(Incident.State.RESPONDING, domain_slug="security")
    user = agent(TeamFactory(domains=["security"]))
    client.force_login(user)
    page = f"/desk/incidents/{incident.reference}/"
    assert client.get(page).status_code == 200
    Membership.objects.filter(user=user).delete()
    assert client.get(page).status_code == 404
    Membership.objects.create(user=user, team=TeamFactory(domains=["security"]))
    assert client.get(page).status_code == 200


def test_the_privacy_permission_takes_effect_on_the_next_request(client):
    reporter = UserFactory(first_name="Quentin", last_name="Quiet")
    incident = incident_in(Incident.State.RESPONDING, reporter=reporter, confidential=True)
    user = agent(TeamFactory(domains=["it_service"]))
    client.force_login(user)
    page = f"/desk/incidents/{incident.reference}/"
    assert reporter.username not in client.get(page).content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_confidential_reporter"))
    assert reporter.username in client.get(page).content.decode()
    user.user_permissions.clear()
    assert reporter.username not in client.get(page).content.decode()


def test_a_session_of_a_backend_no_longer_configured_is_anonymous(client):
    client.force_login(agent())
    assert client.get("/desk/").status_code == 200
    with override_settings(AUTHENTICATION_BACKENDS=["accounts.backends.AxesBackend"]):
        assert _signed_out(client.get("/desk/"))
