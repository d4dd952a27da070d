"""Error pages: every audience gets the app's 400/403/404/500 pages, with DEBUG on or off; only staff see
Django's technical pages, and only with DEBUG on. Under /api/ the answer is `{"detail", "code"}`."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from config import urls as project_urls
from tests.factories import UserFactory, agent

pytestmark = pytest.mark.django_db

TECHNICAL_404 = "Using the URLconf defined in"
TECHNICAL_500 = "Traceback"


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-value-in-a-traceback")


# The project's URLs plus one view that fails, for the 500 page (used with @pytest.mark.urls(__name__)).
urlpatterns = [path("boom/", boom), *project_urls.urlpatterns]
handler400 = getattr(project_urls, "handler400", "django.views.defaults.bad_request")
handler403 = getattr(project_urls, "handler403", "django.views.defaults.permission_denied")
handler404 = getattr(project_urls, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(project_urls, "handler500", "django.views.defaults.server_error")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(params=[True, False], ids=["DEBUG", "no-DEBUG"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("url", ["/desk/", "/no/such/page/", "/desk/incidents/INC-999999/"])
def test_a_reporter_gets_the_apps_404_never_the_url_list(debug, url):
    response = signed_in(UserFactory()).get(url)
    page = response.content.decode()
    assert response.status_code == 404
    assert "We cannot find this page" in page
    assert TECHNICAL_404 not in page
    assert "incidents.urls" not in page
    assert 'class="navbar' in page  # the app's layout
    assert 'href="/my/"' in page  # the reporter's way on


def test_anonymous_and_responders_get_their_own_way_on(debug):
    assert Client().get("/desk/").status_code == 302  # to the sign-in page
    anonymous = Client().get("/desk/nothing-here/")
    assert anonymous.status_code == 404
    assert "We cannot find this page" in anonymous.content.decode()
    assert 'href="/accounts/login/?next=/desk/nothing-here/"' in anonymous.content.decode()

    responder = signed_in(agent()).get("/desk/no-such-thing/")
    assert responder.status_code == 404
    assert "Back to the queue" in responder.content.decode()
    assert TECHNICAL_404 not in responder.content.decode()


def test_staff_keep_the_technical_404_with_debug_only(settings):
    staff = signed_in(UserFactory(is_staff=True))
    settings.DEBUG = True
    assert TECHNICAL_404 in staff.get("/no/such/page/").content.decode()
    settings.DEBUG = False
    page = staff.get("/no/such/page/").content.decode()
    assert TECHNICAL_404 not in page
    assert "We cannot find this page" in page


def test_the_api_answers_json_for_an_unknown_url(debug):
    response = signed_in(UserFactory()).get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.urls(__name__)
def test_a_crash_shows_the_apps_500_page_without_a_traceback(debug, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())
    response = client.get("/boom/")
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert "secret-value-in-a-traceback" not in page
    assert TECHNICAL_500 not in page
    # The error is still logged with its traceback, for the people who run the desk.
    assert any(record.exc_info and "secret-value" in str(record.exc_info[1]) for record in caplog.records)


@pytest.mark.urls(__name__)
def test_staff_see_the_traceback_with_debug(settings):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "secret-value-in-a-traceback" in response.content.decode()


def test_an_expired_form_gets_the_apps_403_page(debug):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/report/", {"title": "x"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "You may not do this" in page
    assert "CSRF verification failed" not in page
    assert 'class="navbar' in page


def test_permission_denied_is_the_apps_403_for_people_and_json_for_the_api(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    from config.errors import permission_denied

    request = rf.get("/desk/")
    request.user = UserFactory()
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert "Your account does not have the permission" in response.content.decode()
    assert 'href="/my/"' in response.content.decode()

    request = rf.get("/api/v1/incidents/")
    request.user = AnonymousUser()
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert b'"code": "permission_denied"' in response.content
