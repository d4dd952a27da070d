"""The web interface through Django's test client: reporter form and portal, console, teams, sign-in."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from escalation.engine import sweep
from escalation.models import Notification, Schedule, ScheduleMember, ScheduleOverride
from escalation.tasks import deliver_notification
from incidents import lifecycle, services
from incidents.models import Incident, SatisfactionRating, SavedQueueView
from tests.factories import (
    CategoryFactory,
    TeamFactory,
    UserFactory,
    agent,
    classified,
    domain,
    incident_in,
    report,
    sla_policy,
)

pytestmark = pytest.mark.django_db
S = Incident.State


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """The report rate limit counts in the cache, which outlives a test."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def desk(client):
    """A signed-in agent of a team handling IT service incidents."""
    team = TeamFactory(domains=["it_service"])
    user = agent(team, first_name="Alex", last_name="Agent")
    client.force_login(user)
    client.user = user
    client.team = team
    return client


def test_home_sends_each_kind_of_user_to_their_start(client):
    assert b"Report an incident" in client.get("/").content
    client.force_login(UserFactory())
    assert client.get("/")["Location"] == reverse("web:my_incidents")
    client.force_login(agent())
    assert client.get("/")["Location"] == reverse("web:queue")


# --- the report form ----------------------------------------------------------------------------


def form_token(client) -> str:
    """The one-time token of a freshly loaded report form, as a browser would send it back."""
    page = client.get("/report/").content.decode()
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def test_anonymous_report_gives_reference_and_tracking_link_by_page_and_mail(
    client, attachment_dir, django_capture_on_commit_callbacks
):
    category = CategoryFactory(slug="vpn")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/report/",
            {
                "form_token": form_token(client),
                "title": "VPN is down",
                "description": "Since **9:00**",
                "domain": category.domain_id,
                "category": category.pk,
                "outcome": "no_harm",
                "affected": "2",
                "urgency": "1",
                "reporter_email": "pat@example.org",
                "attachment": SimpleUploadedFile("trace.txt", b"ping timeout\n"),
            },
        )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:report_done", args=[incident.tracking_token])
    assert (incident.channel, incident.impact, incident.urgency, incident.priority) == ("web", 2, 1, 2)
    assert incident.reporter is None
    assert incident.reporter_email == "pat@example.org"
    assert incident.category == category
    assert incident.attachments.count() == 1
    assert len(incident.tracking_token) >= 43  # 256 bits, url-safe
    page = client.get(response["Location"]).content.decode()
    assert incident.reference in page
    assert f"/track/{incident.tracking_token}/" in page
    # The receipt is an outbox row written with the incident, prompted after commit, sent by the delivery task.
    assert mail.outbox == []
    row = Notification.objects.get(incident=incident, event="reporter_received")
    assert (row.recipient, row.state) == ("pat@example.org", "pending")
    assert deliver_notification(row.pk) == "sent"
    assert len(mail.outbox) == 1
    assert f"/track/{incident.tracking_token}/" in mail.outbox[0].body
    assert incident.timeline.filter(kind="notification", data__event="reporter_received").exists()


def test_a_report_that_fails_queues_no_receipt(client, settings, django_capture_on_commit_callbacks):
    settings.ATTACHMENT_MAX_BYTES = 5
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/report/",
            {"title": "VPN is down", "reporter_email": "pat@example.org", "form_token": form_token(client),
             "attachment": SimpleUploadedFile("big.txt", b"x" * 100)},
        )  # fmt: skip
    assert response.status_code == 400
    assert not Incident.objects.exists()
    assert not Notification.objects.exists()


def test_signed_in_report_needs_no_email_and_is_theirs(client):
    user = UserFactory()
    client.force_login(user)
    assert b"reporter_email" not in client.get("/report/").content
    response = client.post(
        "/report/", {"title": "Printer on fire", "confidential": "on", "form_token": form_token(client)}
    )
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert incident.reporter == user
    assert incident.confidential


def test_anonymous_report_without_email_is_refused_with_the_field_marked(client):
    response = client.post("/report/", {"title": "Something"})
    assert response.status_code == 400
    assert 'id="id_reporter_email_error"' in response.content.decode()
    assert not Incident.objects.exists()


def test_honeypot_and_rate_limit_refuse_reports(client, settings):
    assert (
        client.post(
            "/report/", {"title": "x", "reporter_email": "a@example.org", "website": "spam"}
        ).status_code
        == 400
    )
    settings.WEB_REPORT_RATE = "2/hour"
    codes = [
        client.post(
            "/report/", {"title": "x", "reporter_email": "a@example.org", "form_token": form_token(client)}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [302, 302, 429]
    assert Incident.objects.count() == 2


def test_sending_the_same_report_form_twice_makes_one_incident_and_shows_it(
    client, django_capture_on_commit_callbacks
):
    sent = {
        "title": "Wi-Fi down on ward 3",
        "reporter_email": "pat@example.org",
        "form_token": form_token(client),
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/report/", sent)
        second = client.post("/report/", sent)  # a double click, or a resend after a timeout
    incident = Incident.objects.get()
    assert first.status_code == second.status_code == 302
    assert (
        first["Location"] == second["Location"] == reverse("web:report_done", args=[incident.tracking_token])
    )
    assert "already sent" in client.get(second["Location"]).content.decode()
    assert Notification.objects.filter(event="reporter_received").count() == 1


def test_a_signed_in_reporter_sending_twice_makes_one_incident(client):
    user = UserFactory()
    client.force_login(user)
    sent = {"title": "Printer on fire", "form_token": form_token(client)}
    assert client.post("/report/", sent).status_code == 302
    assert client.post("/report/", sent).status_code == 302
    assert Incident.objects.filter(reporter=user).count() == 1


def test_each_loaded_form_is_its_own_report(client):
    for _ in range(2):
        client.post(
            "/report/",
            {"title": "Printer", "reporter_email": "p@example.org", "form_token": form_token(client)},
        )
    assert Incident.objects.count() == 2


@pytest.mark.parametrize("token", ["", "forged", "abc:def:ghi"])
def test_a_form_without_a_token_the_desk_issued_is_refused_and_comes_back_fresh(client, token):
    response = client.post(
        "/report/", {"title": "Printer", "reporter_email": "p@example.org", "form_token": token}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="form-token-error"' in page
    assert not Incident.objects.exists()
    fresh = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    assert fresh != token
    resent = {"title": "Printer", "reporter_email": "p@example.org", "form_token": fresh}
    assert client.post("/report/", resent).status_code == 302


def test_an_expired_form_token_is_refused(client):
    with time_machine.travel(dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)):
        token = form_token(client)
    with time_machine.travel(dt.datetime(2026, 6, 2, 9, 0, tzinfo=dt.UTC)):
        response = client.post(
            "/report/", {"title": "x", "reporter_email": "p@example.org", "form_token": token}
        )
    assert response.status_code == 400
    assert not Incident.objects.exists()


def test_someone_else_sending_a_used_token_learns_nothing_of_the_first_report(client):
    token = form_token(client)
    client.post(
        "/report/", {"title": "Secret thing", "reporter_email": "pat@example.org", "form_token": token}
    )
    incident = Incident.objects.get()
    other = {"title": "Mine", "reporter_email": "eve@example.org", "form_token": token}
    response = client.post("/report/", other)
    page = response.content.decode()
    assert response.status_code == 409
    assert incident.tracking_token not in page
    assert incident.reference not in page
    assert "already sent" in page
    assert Incident.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_submits_of_one_form_at_the_same_moment_make_one_incident(postgres, monkeypatch):
    """PostgreSQL, two connections: the second submit waits on the first's form token, then shows its incident."""
    sent = {"title": "Wi-Fi down", "reporter_email": "pat@example.org", "form_token": form_token(Client())}
    real_create = services.create_incident
    inside = threading.Event()

    def slow_create(**kwargs):
        inside.set()
        time.sleep(0.5)  # the second submit arrives meanwhile
        return real_create(**kwargs)

    monkeypatch.setattr(services, "create_incident", slow_create)
    answers: list[tuple[int, str]] = []

    def submit() -> None:
        try:
            response = Client().post("/report/", sent)
            answers.append((response.status_code, response["Location"]))
        finally:
            connection.close()

    first = threading.Thread(target=submit)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=submit)
    second.start()
    first.join(20)
    second.join(20)

    incident = Incident.objects.get()
    done = reverse("web:report_done", args=[incident.tracking_token])
    assert answers == [(302, done), (302, done)]
    assert Notification.objects.filter(event="reporter_received").count() == 1


def test_category_options_follow_the_domain(client):
    CategoryFactory(slug="vpn")
    CategoryFactory(slug="malware", domain=domain("security"))
    html = client.get("/report/categories/", {"domain": domain("security").pk}).content.decode()
    assert "malware" in html
    assert "vpn" not in html


def test_a_category_of_another_domain_is_refused(client):
    category = CategoryFactory(slug="vpn")
    response = client.post(
        "/report/",
        {
            "title": "x",
            "reporter_email": "a@example.org",
            "domain": domain("security").pk,
            "category": category.pk,
            "form_token": form_token(client),
        },
    )
    assert response.status_code == 400
    assert not Incident.objects.exists()


# --- the reporter's pages -----------------------------------------------------------------------


def test_tracking_page_shows_public_entries_only(client):
    incident = incident_in(S.RESPONDING, reporter_email="pat@example.org")
    responder = agent(incident.team)
    services.add_comment(incident, author=responder, body="We are on it", public=True)
    services.add_comment(incident, author=responder, body="Vendor ticket 4711, secret", public=False)
    page = client.get(f"/track/{incident.tracking_token}/").content.decode()
    assert "We are on it" in page
    assert "secret" not in page
    assert "Someone is working on it" in page
    assert client.get("/track/short/").status_code == 404
    assert client.get("/track/" + "x" * 43 + "/").status_code == 404


def test_reporter_replies_and_attaches_through_the_link(client, attachment_dir):
    incident = report(reporter_email="pat@example.org")
    token = incident.tracking_token
    assert client.post(f"/track/{token}/reply/", {"body": "More detail"}).status_code == 302
    assert (
        client.post(f"/track/{token}/attach/", {"file": SimpleUploadedFile("a.txt", b"hello")}).status_code
        == 302
    )
    comment = incident.comments.get()
    assert comment.public
    assert comment.author is None
    assert comment.body == "More detail"
    assert incident.attachments.get().public
    refused = client.post(f"/track/{token}/attach/", {"file": SimpleUploadedFile("a.exe", b"MZ...")})
    assert refused.status_code == 400
    assert b"not accepted" in refused.content


def test_reporter_confirms_or_reopens_a_resolved_incident(client):
    incident = incident_in(S.RESOLVED, reporter_email="pat@example.org")
    token = incident.tracking_token
    assert b"This fixed it" in client.get(f"/track/{token}/").content
    assert b"Fixed - please confirm" in client.get(f"/track/{token}/").content
    client.post(f"/track/{token}/confirm/")
    confirmed = client.get(f"/track/{token}/").content
    assert b"You confirmed the fix" in confirmed
    assert b"Fixed - you confirmed it" in confirmed  # the badge no longer asks (issue 13, item 7)
    assert re.search(rb"Status: <span[^>]*>Fixed - you confirmed it</span>", confirmed)
    assert client.post(f"/track/{token}/reopen/", {"reason": "Down again"}).status_code == 302
    incident.refresh_from_db()
    assert incident.state == S.RESPONDING
    assert incident.reopen_count == 1
    again = client.post(f"/track/{token}/reopen/", {"reason": "Down again"})
    assert again.status_code == 409
    assert b"Cannot reopen an incident that is responding" in again.content


def test_closed_incident_shows_the_report_and_takes_one_click_rating(client):
    incident = incident_in(S.CLOSED, reporter_email="pat@example.org")
    page = client.get(f"/track/{incident.tracking_token}/").content.decode()
    assert "Memory leak in firmware" in page
    assert "Firmware upgraded" in page
    client.post(f"/track/{incident.tracking_token}/rate/", {"score": "2"})
    client.post(f"/track/{incident.tracking_token}/rate/", {"score": "5"})
    assert SatisfactionRating.objects.get(incident=incident).score == 5
    assert client.post(f"/track/{incident.tracking_token}/rate/", {"score": "9"}).status_code == 400


def test_my_incidents_lists_only_my_own(client):
    me, other = UserFactory(), UserFactory()
    mine = report(reporter=me, title="Mine")
    report(reporter=other, title="Theirs")
    client.force_login(me)
    page = client.get("/my/").content.decode()
    assert mine.reference in page
    assert "Theirs" not in page


# --- the queue ----------------------------------------------------------------------------------


def test_queue_is_for_responders_only(client):
    assert client.get("/desk/")["Location"].startswith(reverse("login"))
    client.force_login(UserFactory())
    assert client.get("/desk/").status_code == 404


def test_queue_shows_only_visible_open_incidents_and_filters(desk):
    vpn = report(title="VPN drops", domain=domain("it_service"))
    printer = report(title="Printer jams", domain=domain("it_service"))
    secret = report(title="Phishing wave", domain=domain("security"))
    closed = incident_in(S.CLOSED)
    page = desk.get("/desk/").content.decode()
    assert vpn.reference in page
    assert printer.reference in page
    assert secret.reference not in page
    assert closed.reference not in page
    page = desk.get("/desk/", {"q": "printer"}).content.decode()
    assert printer.reference in page
    assert vpn.reference not in page
    page = desk.get("/desk/", {"state": "closed"}).content.decode()
    assert closed.reference in page
    assert vpn.reference not in page
    page = desk.get("/desk/", {"state": "nonsense"}).content.decode()
    assert "were not understood" in page


def test_queue_pages_with_a_keyset_cursor(desk, monkeypatch):
    monkeypatch.setattr("incidents.views.desk_queue.PAGE_SIZE", 2)
    made = [report(title=f"Incident {i}", domain=domain("it_service")) for i in range(5)]
    for sort, expected in [("newest", made[::-1]), ("oldest", made)]:
        seen, query = [], {"sort": sort}
        while True:
            response = desk.get("/desk/", query)
            seen += re.findall(r'data-ref="(INC-\d+)"', response.content.decode())
            match = re.search(r'href="\?([^"]*cursor[^"]*)" rel="next"', response.content.decode())
            if not match:
                break
            query = dict(pair.split("=", 1) for pair in match.group(1).replace("&amp;", "&").split("&"))
        assert seen == [i.reference for i in expected]


def test_priority_sort_puts_p1_first_and_unprioritised_last(desk, monkeypatch):
    monkeypatch.setattr("incidents.views.desk_queue.PAGE_SIZE", 1)
    low = report(title="low", impact=3, urgency=3)
    none = report(title="none")
    high = report(title="high", impact=1, urgency=1)
    seen, query = [], {"sort": "priority"}
    for _ in range(5):
        body = desk.get("/desk/", query).content.decode()
        seen += re.findall(r'data-ref="(INC-\d+)"', body)
        match = re.search(r'cursor=([^"&]+)"? ?[^>]*rel="next"', body)
        if not match:
            break
        query = {"sort": "priority", "cursor": match.group(1)}
    assert seen == [high.reference, low.reference, none.reference]


def test_queue_poll_returns_the_results_fragment(desk):
    report(title="VPN drops")
    response = desk.get("/desk/", {"q": "vpn"}, headers={"HX-Request": "true", "HX-Target": "queue-results"})
    html = response.content.decode()
    assert html.startswith('<div id="queue-results"')
    assert '<nav class="navbar' not in html
    assert "q=vpn" in html  # the next poll keeps the filters


def test_presets_and_saved_views(desk):
    mine = incident_in(S.RESPONDING)
    lifecycle.acknowledge_incident(
        lifecycle.escalate_incident(mine, actor=agent(mine.team), team=desk.team, reason="ours"),
        actor=desk.user,
    )
    other = incident_in(S.RESPONDING)
    page = desk.get("/desk/", {"assignee": "me", "open": "1"}).content.decode()
    assert mine.reference in page
    assert other.reference not in page
    by_name = desk.get("/desk/", {"assignee": desk.user.username, "open": "1"}).content.decode()
    assert mine.reference in by_name
    assert other.reference not in by_name
    assert (
        f'<option value="{desk.user.username}" selected>Alex Agent ({desk.user.username})</option>' in by_name
    )
    desk.post("/desk/views/", {"name": "Mine", "query": "assignee=me&open=1"})
    view = SavedQueueView.objects.get(user=desk.user)
    assert view.name == "Mine"
    assert "Mine" in desk.get("/desk/").content.decode()
    assert desk.post(f"/desk/views/{view.pk}/delete/").status_code == 302
    assert not SavedQueueView.objects.exists()


def test_bulk_actions_go_through_the_lifecycle_and_list_refusals(desk):
    a = report(title="a", domain=domain("it_service"))
    b = incident_in(S.CLOSED)
    category = CategoryFactory(slug="mail")
    response = desk.post(
        "/desk/bulk/",
        {
            "bulk_action": "classify",
            "ids": [a.pk, b.pk],
            "domain": category.domain_id,
            "category": category.pk,
            "impact": "1",
            "urgency": "2",
            "team": desk.team.pk,
            "query": "open=1",
        },
        follow=True,
    )
    a.refresh_from_db()
    assert a.state == S.CLASSIFIED
    assert a.priority == 2
    assert a.team == desk.team
    page = response.content.decode()
    assert f"{b.reference}: Cannot classify an incident that is closed" in page
    desk.post("/desk/bulk/", {"bulk_action": "assign", "ids": [a.pk]})
    a.refresh_from_db()
    assert a.state == S.CLASSIFIED  # assigning hands it over; it does not acknowledge it
    assert a.assignee == desk.user
    desk.post("/desk/bulk/", {"bulk_action": "cancel", "ids": [a.pk], "cancel_reason": "duplicate"})
    a.refresh_from_db()
    assert a.state == S.CANCELLED


def test_bulk_cannot_touch_invisible_incidents(desk):
    secret = report(title="Phishing", domain=domain("security"))
    desk.post("/desk/bulk/", {"bulk_action": "cancel", "ids": [secret.pk], "cancel_reason": "spam"})
    secret.refresh_from_db()
    assert secret.state == S.RECEIVED


def test_queue_query_count_is_constant(desk, django_assert_num_queries):
    from django.core.cache import cache

    def count(**headers) -> int:
        cache.clear()  # the select choices are cached for a few seconds: count them every time
        with CaptureQueriesContext(connection) as ctx:
            assert desk.get("/desk/", headers=headers).status_code == 200
        return len(ctx.captured_queries)

    def make(n: int) -> None:
        for i in range(n):
            if i % 5 == 0:
                incident_in(S.ESCALATED, reporter=UserFactory())
            else:
                report(title=f"i{i}", confidential=i % 2 == 0, domain=domain("it_service"))

    poll = {"HX-Request": "true", "HX-Target": "queue-results"}
    make(5)
    small, small_poll = count(), count(**poll)
    make(45)
    agent(TeamFactory(), username="another-agent")  # more people to choose from: still one query
    CategoryFactory(slug="another")
    assert (count(), count(**poll)) == (small, small_poll)
    # session; user with roles and permission (one query, incidents.signin); one page of rows; one query for the three attention
    # counts; saved views; domains, teams, categories and assignees for the selects (then cached). These
    # incidents are of an unrestricted domain: no audit row, and no statement for it (one INSERT when the page
    # shows restricted ones: test_the_queue_audits_the_restricted_rows_it_shows_in_one_insert_and_nothing_else).
    assert small == 9  # 10 before the user and the roles were one statement
    desk.get("/desk/")
    with django_assert_num_queries(5):  # the choices are cached now; an empty page: no audit statement
        desk.get("/desk/", {"sort": "priority", "cursor": "3.1", "sla": "warning", "q": "vpn"})
    # A bound below the oldest row (not a fixed id: ids depend on the tests run before), so the page has rows.
    oldest = str(Incident.objects.order_by("pk").values_list("pk", flat=True).first())
    with django_assert_num_queries(3):  # the 30-second poll renders the rows only (none restricted: no audit)
        assert "data-ref=" in desk.get("/desk/", {"before": oldest}, headers=poll).content.decode()


def test_the_queue_poll_answers_304_while_the_viewers_rows_are_unchanged(desk, django_assert_num_queries):
    incident = report(title="VPN drops", domain=domain("it_service"))
    poll = {"HX-Request": "true", "HX-Target": "queue-results"}
    page = desk.get("/desk/").content.decode()
    first = desk.get("/desk/", headers=poll)
    etag = first["ETag"]
    assert etag.startswith('W/"')
    # The page's rows carry the same ETag: the first poll may already be a 304.
    assert f'data-etag="{etag.replace(chr(34), "&quot;")}"' in page
    with django_assert_num_queries(3):  # as a poll that renders: session, user with roles, rows
        unchanged = desk.get("/desk/", headers={**poll, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag
    assert "no-store" in unchanged["Cache-Control"]
    # Any change to what a row shows, whoever writes it: an edit, or the SLA engine marking a clock.
    services.edit_incident(incident, actor=desk.user, version=incident.version, title="VPN drops again")
    edited = desk.get("/desk/", headers={**poll, "If-None-Match": etag})
    assert edited.status_code == 200
    assert "VPN drops again" in edited.content.decode()
    Incident.objects.filter(pk=incident.pk).update(sla_response="warning")
    marked = desk.get("/desk/", headers={**poll, "If-None-Match": edited["ETag"]})
    assert marked.status_code == 200
    # Per viewer: another agent's poll with the same rows never answers with this one's ETag.
    other = Client()
    other.force_login(agent(desk.team, username="another-agent"))
    assert other.get("/desk/", headers={**poll, "If-None-Match": marked["ETag"]}).status_code == 200
    # Only the poll is conditional: the page itself always renders.
    assert desk.get("/desk/", headers={"If-None-Match": marked["ETag"]}).status_code == 200


def test_queue_choices_are_shared_for_a_few_seconds(desk):
    from django.core.cache import cache

    cache.clear()
    desk.get("/desk/")
    TeamFactory(name="Brand new team")
    assert "Brand new team" not in desk.get("/desk/").content.decode()
    cache.delete("console:queue-choices")  # as when CHOICES_CACHE_SECONDS have passed
    assert "Brand new team" in desk.get("/desk/").content.decode()


def test_queue_pages_back_and_forth_keeping_the_filters(desk, monkeypatch):
    monkeypatch.setattr("incidents.views.desk_queue.PAGE_SIZE", 2)
    made = [report(title=f"Printer {i}", domain=domain("it_service")) for i in range(5)]
    report(title="VPN", domain=domain("it_service"))  # filtered out by the search

    def refs(body: str) -> list[str]:
        return re.findall(r'data-ref="(INC-\d+)"', body)

    def link(body: str, rel: str) -> dict[str, str] | None:
        match = re.search(rf'href="\?([^"]*)" rel="{rel}"', body)
        if match is None:
            return None
        return dict(pair.split("=", 1) for pair in match.group(1).replace("&amp;", "&").split("&"))

    pages, query = [], {"q": "printer", "sort": "newest"}
    while True:
        body = desk.get("/desk/", query).content.decode()
        pages.append(refs(body))
        query = link(body, "next")
        if query is None:
            break
        assert query["q"] == "printer"
    assert pages == [[i.reference for i in made[::-1][k : k + 2]] for k in (0, 2, 4)]
    assert link(body, "prev") is not None
    back = []
    while (query := link(body, "prev")) is not None:
        assert query["q"] == "printer"
        assert "cursor" not in query
        body = desk.get("/desk/", query).content.decode()
        back.append(refs(body))
    assert back == pages[-2::-1]
    assert 'rel="first"' not in body  # back on the first page
    assert link(body, "next") is not None


def test_priority_pages_go_back_across_unprioritised_incidents(desk, monkeypatch):
    monkeypatch.setattr("incidents.views.desk_queue.PAGE_SIZE", 1)
    low = report(title="low", impact=3, urgency=3)
    none = report(title="none")
    none2 = report(title="none too")
    high = report(title="high", impact=1, urgency=1)
    forward, query, body = [], {"sort": "priority"}, ""
    while query is not None:
        body = desk.get("/desk/", query).content.decode()
        forward += re.findall(r'data-ref="(INC-\d+)"', body)
        match = re.search(r'href="\?([^"]*)" rel="next"', body)
        query = match and dict(p.split("=", 1) for p in match.group(1).replace("&amp;", "&").split("&"))
    assert forward == [high.reference, low.reference, none.reference, none2.reference]
    backward = []
    while match := re.search(r'href="\?([^"]*)" rel="prev"', body):
        query = dict(p.split("=", 1) for p in match.group(1).replace("&amp;", "&").split("&"))
        body = desk.get("/desk/", query).content.decode()
        backward += re.findall(r'data-ref="(INC-\d+)"', body)
    assert backward == forward[-2::-1]


@pytest.mark.parametrize("bound", ["cursor", "before"])
@pytest.mark.parametrize("value", ["x", "1.x", "..", "n", "9" * 30])
def test_a_malformed_page_bound_shows_a_page_not_an_error(desk, bound, value):
    report(title="still here", domain=domain("it_service"))
    for sort in ("newest", "oldest", "priority"):
        response = desk.get("/desk/", {"sort": sort, bound: value})
        assert response.status_code == 200


def test_breaching_soon_is_the_engines_warning_state(desk):
    """The preset and the SLA filter read the clock state the SLA engine stored, not a rule of their own:
    an incident due within the hour but short of its warning threshold is not "breaching soon"."""
    sla_policy(priority=1, response=20, resolution=240)  # warns at 75 %: 15 minutes
    sla_policy(priority=2, response=60, resolution=480, warn=90)  # warns at 54 minutes
    t0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        warned, _ = classified(team=desk.team)
        calm, _ = classified(team=desk.team, priority_urgency=2)  # P2, due at 09:00
    sweep(now=t0 + dt.timedelta(minutes=16))
    calm.refresh_from_db()
    assert calm.sla_response == "pending"
    assert calm.response_due_at - (t0 + dt.timedelta(minutes=16)) < dt.timedelta(hours=1)
    queue = desk.get("/desk/").content.decode()
    preset = re.search(r'href="\?([^"]*)" data-preset="breaching-soon"', queue).group(1).replace("&amp;", "&")
    page = desk.get("/desk/?" + preset).content.decode()
    assert warned.reference in page
    assert calm.reference not in page
    assert '<option value="warning" selected>' in page
    assert 'id="attention-warning"' in queue
    assert re.search(r'id="attention-warning">\s*<span class="attention-count">1</span>', queue)
    breached = desk.get("/desk/", {"sla": "breached"}).content.decode()
    assert warned.reference not in breached


def test_the_retired_sla_value_soon_is_an_unknown_filter_value(desk):
    """`sla=soon` (the console's name before the engine's clock states) is gone: like any unknown value the
    console says the filter was not understood and shows the open queue; the API answers 400 naming `sla`.
    Saved views that carried it were rewritten to `warning` by migration 0019."""
    open_one = report(title="Printer jam")
    response = desk.get("/desk/", {"sla": "soon", "open": "1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Some filters were not understood and were ignored." in page
    assert open_one.reference in page
    assert '<option value="warning" selected>' not in page
    assert desk.get("/desk/export.csv", {"sla": "soon"}).status_code == 400
    assert "sla" in desk.get("/desk/export.csv", {"sla": "soon"}).content.decode()
    api = desk.get("/api/v1/incidents/", {"sla": "soon"})
    assert api.status_code == 400
    assert "sla" in api.json()


# --- the incident page --------------------------------------------------------------------------


def test_incident_page_404_outside_visibility(desk):
    secret = report(title="Phishing", domain=domain("security"))
    assert desk.get(f"/desk/incidents/{secret.reference}/").status_code == 404
    assert desk.get("/desk/incidents/INC-999999/").status_code == 404
    assert (
        desk.post(f"/desk/incidents/{secret.reference}/cancel/", {"cancel-reason": "spam"}).status_code == 404
    )


def test_incident_page_offers_only_the_allowed_actions(desk):
    incident = report(title="VPN", domain=domain("it_service"))
    page = desk.get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert 'data-action="classify"' in page
    assert 'data-action="cancel"' in page
    assert 'data-action="resolve"' not in page
    assert 'data-action="acknowledge"' not in page


def test_incident_page_fetches_an_action_form_when_opened(desk):
    """The page builds no action form: each is fetched when opened (htmx), carrying the version the page showed,
    so that a change made meanwhile still answers 409; without JavaScript the same address shows the page with
    that form open. An action the transition table no longer allows is refused, not offered."""
    incident = report(title="VPN", domain=domain("it_service"))
    url = f"/desk/incidents/{incident.reference}/"
    page = desk.get(url).content.decode()
    assert 'name="classify-team"' not in page
    assert f'hx-get="{url}classify/?version={incident.version}"' in page
    assert f'href="{url}classify/?version={incident.version}"' in page  # without JavaScript

    fragment = desk.get(url + "classify/", {"version": incident.version}, headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in html
    assert 'name="classify-team"' in html
    assert f'name="classify-version" value="{incident.version}"' in html

    services.edit_incident(incident, actor=desk.user, version=incident.version, title="VPN down")
    stale = desk.get(url + "cancel/", {"version": 1}, headers={"HX-Request": "true"}).content.decode()
    assert 'name="cancel-version" value="1"' in stale  # the page's version, not the new one
    assert desk.post(url + "cancel/", {"cancel-version": 1, "cancel-reason": "spam"}).status_code == 409

    full = desk.get(url + "cancel/", {"version": 2}).content.decode()
    assert 'id="incident-title"' in full
    assert re.search(r'<details class="action-details" data-action="cancel" open>', full)
    assert 'name="cancel-reason"' in full

    refused = desk.get(url + "resolve/", headers={"HX-Request": "true"})
    assert refused.status_code == 200
    assert "Cannot resolve an incident that is received" in refused.content.decode()
    assert 'name="resolve-summary"' not in refused.content.decode()
    assert desk.get(url + "resolve/").status_code == 409


def test_incident_page_fetches_the_edit_form_when_opened(desk):
    incident = report(title="Old title", domain=domain("it_service"))
    url = f"/desk/incidents/{incident.reference}/"
    assert 'id="id_title"' not in desk.get(url).content.decode()
    fragment = desk.get(url + "edit/", {"version": 1}, headers={"HX-Request": "true"}).content.decode()
    assert 'value="Old title"' in fragment
    assert 'name="version" value="1"' in fragment
    assert re.search(r'<details class="mb-3" id="edit" open>', desk.get(url + "edit/").content.decode())


def test_classify_acknowledge_resolve_close_from_the_console(desk):
    incident = report(title="VPN", domain=domain("it_service"))
    category = CategoryFactory(slug="vpn")
    url = f"/desk/incidents/{incident.reference}/"
    response = desk.post(
        url + "classify/",
        {
            "classify-version": incident.version,
            "classify-domain": category.domain_id,
            "classify-category": category.pk,
            "classify-impact": "2",
            "classify-urgency": "1",
            "classify-team": desk.team.pk,
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    desk.post(url + "acknowledge/", {"acknowledge-version": incident.version})
    desk.post(url + "resolve/", {"resolve-summary": "Restarted"})
    desk.post(
        url + "close/", {"close-cause": "Leak", "close-measures": "Patched", "close-resolution_code": "fixed"}
    )
    incident.refresh_from_db()
    assert incident.state == S.CLOSED
    assert incident.assignee == desk.user
    assert incident.priority == 2


def test_missing_inputs_are_shown_on_the_action_form(desk):
    incident = incident_in(S.RESPONDING)
    client_team_member = agent(incident.team)
    desk.force_login(client_team_member)
    response = desk.post(f"/desk/incidents/{incident.reference}/resolve/", {"resolve-summary": ""})
    assert response.status_code == 400
    assert 'id="id_resolve-summary_error"' in response.content.decode()


def test_refused_action_shows_the_api_message(desk):
    incident = incident_in(S.CLOSED)
    response = desk.post(f"/desk/incidents/{incident.reference}/resolve/", {"resolve-summary": "again"})
    api = desk.post(
        f"/api/v1/incidents/{incident.reference}/resolve/",
        {"summary": "again"},
        content_type="application/json",
    )
    assert response.status_code == api.status_code == 409
    assert api.json()["detail"] in response.content.decode()


def test_stale_version_is_a_conflict_with_reload(desk):
    incident = report(title="Old title", domain=domain("it_service"))
    url = f"/desk/incidents/{incident.reference}/edit/"
    assert desk.post(url, {"version": 1, "title": "First"}).status_code == 302
    response = desk.post(url, {"version": 1, "title": "Second"})
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="conflict"' in html
    assert "Someone else changed this incident while you were looking at it" in html
    banner = re.search(r'id="conflict">(.*?)</div>', html, re.S).group(1)
    assert banner.count("changed") == 1  # the banner says it once (issue 13, item 7)
    assert "Reload" in html
    incident.refresh_from_db()
    assert incident.title == "First"
    ack = desk.post(
        f"/desk/incidents/{incident.reference}/cancel/", {"cancel-version": 1, "cancel-reason": "spam"}
    )
    assert ack.status_code == 409
    assert b'id="conflict"' in ack.content


def test_internal_and_public_comments_look_different(desk):
    incident = report(title="VPN", domain=domain("it_service"))
    url = f"/desk/incidents/{incident.reference}/"
    desk.post(url + "comment/", {"body": "internal **note**", "public": "0"})
    desk.post(url + "comment/", {"body": "public reply", "public": "1"})
    page = desk.get(url).content.decode()
    assert re.search(r'timeline-internal kind-comment".*?internal <strong>note</strong>', page, re.S)
    assert re.search(r'timeline-public kind-comment".*?public reply', page, re.S)


def test_stored_xss_is_escaped_or_sanitised(desk):
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    incident = report(title=payload, description=payload, domain=domain("it_service"))
    services.add_comment(incident, author=desk.user, body=payload, public=True)
    for url in (f"/desk/incidents/{incident.reference}/", "/desk/", f"/track/{incident.tracking_token}/"):
        html = desk.get(url).content.decode()
        assert "<script>alert" not in html
        assert not re.search(r"<img[^>]*onerror", html)
    preview = desk.post("/desk/preview/", {"body": payload}).content.decode()
    assert "<script" not in preview
    assert "onerror" not in preview


def test_pages_carry_a_content_security_policy(client):
    csp = client.get("/report/")["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


def test_the_policy_built_once_is_django_csps_and_follows_the_settings_and_the_decorators(client, settings):
    from csp.utils import build_policy

    assert client.get("/report/")["Content-Security-Policy"] == build_policy()
    assert client.get("/api/v1/")["Content-Security-Policy"] == build_policy()  # built once, the same
    # ReDoc's view widens it with csp_update: that response gets its own policy, the next ones the settings'.
    assert "worker-src 'self' blob:" in client.get("/api/redoc/")["Content-Security-Policy"]
    assert "worker-src" not in client.get("/report/")["Content-Security-Policy"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert client.get("/report/")["Content-Security-Policy"] == "default-src 'none'"


def test_incident_page_query_count_is_constant(desk):
    incident = incident_in(S.RESPONDING)
    desk.force_login(agent(incident.team))

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert desk.get(f"/desk/incidents/{incident.reference}/").status_code == 200
        return len(ctx.captured_queries)

    small = count()
    for i in range(10):
        services.add_comment(incident, author=incident.assignee, body=f"c{i}", public=bool(i % 2))
    assert count() == small
    # 19 before the action forms were fetched when opened (their team and responder selects) and the timeline's
    # names read teams only when an entry names one (and domains never); 12 before the user and the roles were
    # one statement (incidents.signin).
    assert small == 11


def compiles_of(call) -> int:
    """How many SQL statements Django compiles (SQLCompiler.as_sql) while `call` runs."""
    from unittest import mock

    from django.db.models.sql.compiler import SQLCompiler

    original = SQLCompiler.as_sql
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=original) as as_sql:
        call()
    return as_sql.call_count


def test_incident_page_compiles_only_the_reads_that_vary_after_its_first_view(desk):
    past = incident_in(S.CLOSED, title="VPN drops every hour on floor 3")
    incident = incident_in(S.RESPONDING, title="VPN drops every hour on floor 3")
    desk.force_login(agent(incident.team))
    services.add_comment(incident, author=incident.assignee, body="checked the cables", public=False)
    services.add_attachment(
        incident, uploaded_by=incident.assignee, upload=SimpleUploadedFile("trace.txt", b"trace"), public=True
    )
    url = f"/desk/incidents/{incident.reference}/"
    for _ in range(2):  # the first view ranks the similar incidents, the second reads them again: compiled
        assert desk.get(url).status_code == 200

    def view() -> None:
        page = desk.get(url).content.decode()
        assert "checked the cables" in page
        assert f"{url}files/" in page
        assert (
            past.reference in page
        )  # the similar incidents' panel, its ranking reused and its rows read again

    # The incident by its reference, the clocks, the timeline, the children, the files and the similar incidents'
    # re-read are compiled once per process, and so are the session and the user (accounts.sessions,
    # incidents.signin); what is left is the names the timeline refers to (categories, people, teams).
    # 14 before, 7 with the incident, the session and the user compiled each time.
    assert compiles_of(view) == 3


def test_incident_page_reads_each_incidents_own_rows_and_only_visible_children(desk):
    """The page's reads are compiled once and run again with another incident's key: each page shows its own
    timeline, files and children, and a child in a restricted domain the reader does not handle stays out."""
    first, second = incident_in(S.RESPONDING, title="First"), incident_in(S.RESPONDING, title="Second")
    reader = agent(first.team)
    desk.force_login(reader)
    for incident in (first, second):
        services.add_comment(
            incident, author=incident.assignee, body=f"note on {incident.title}", public=False
        )
        services.add_attachment(
            incident, uploaded_by=incident.assignee, public=False,
            upload=SimpleUploadedFile(f"{incident.title}.txt", b"log"),
        )  # fmt: skip
    from incidents import major

    visible_child = incident_in(S.RESPONDING, title="Visible child")
    major.set_parent(visible_child, parent=first, actor=first.assignee)
    secret_child = incident_in(S.RESPONDING, domain_slug="security", title="Secret child")
    Incident.objects.filter(pk=secret_child.pk).update(parent_id=first.pk)
    page = desk.get(f"/desk/incidents/{first.reference}/").content.decode()
    assert "note on First" in page
    assert "First.txt" in page
    assert "note on Second" not in page
    assert "Second.txt" not in page
    assert visible_child.reference in page
    assert secret_child.reference not in page
    assert "Secret child" not in page
    page = desk.get(f"/desk/incidents/{second.reference}/").content.decode()
    assert "note on Second" in page
    assert "Second.txt" in page
    assert "note on First" not in page
    assert "First.txt" not in page
    assert visible_child.reference not in page


# --- teams and sign-in --------------------------------------------------------------------------


def test_team_pages_show_members_and_domains(desk):
    page = desk.get(f"/desk/teams/{desk.team.slug}/").content.decode()
    assert "Alex Agent" in page
    assert "IT service" in page
    assert desk.team.name in desk.get("/desk/teams/").content.decode()
    assert 'id="oncall-none"' in page  # no schedule yet


def test_team_page_shows_who_is_on_call_now_and_next_with_overrides(desk, django_assert_num_queries):
    team = desk.team
    alice = agent(team, username="alice", first_name="Alice", last_name="Ng")
    bob = agent(team, username="bob", first_name="Bob", last_name="Ray")
    start = dt.datetime(2026, 6, 1, 7, 0, tzinfo=dt.UTC)
    primary = Schedule.objects.create(team=team, slug="primary", name="Primary", start=start)
    for position, user in enumerate([alice, bob]):
        ScheduleMember.objects.create(schedule=primary, user=user, position=position)
    ScheduleOverride.objects.create(
        schedule=primary,
        user=alice,
        start=dt.datetime(2026, 6, 2, 10, 0, tzinfo=dt.UTC),
        end=dt.datetime(2026, 6, 2, 19, 0, tzinfo=dt.UTC),
        reason=ScheduleOverride.Reason.HOLIDAY,
    )
    url = f"/desk/teams/{team.slug}/"
    with time_machine.travel(dt.datetime(2026, 6, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        page = desk.get(url).content.decode()
        with CaptureQueriesContext(connection) as one_schedule:
            desk.get(url)
        secondary = Schedule.objects.create(team=team, slug="secondary", name="Secondary", start=start)
        for position, user in enumerate([bob, alice, desk.user]):
            ScheduleMember.objects.create(schedule=secondary, user=user, position=position)
        with django_assert_num_queries(len(one_schedule)):  # more schedules, members and people: same
            both = desk.get(url).content.decode()
    schedule = page[page.index('data-schedule="primary"') :]
    now = schedule[schedule.index('class="col-9 mb-1 oncall-now"') :]
    assert now.index("Alice Ng") < now.index("override: holiday cover") < now.index("oncall-next")
    after = now[now.index("oncall-next") :]
    assert "Bob Ray" in after[:200]
    assert "override" not in after[: after.index("</dd>")]
    assert "until Tue 2 Jun, 19:00" in now
    assert 'data-schedule="secondary"' in both
    assert both.index('data-schedule="primary"') < both.index('data-schedule="secondary"')


def test_sign_in_and_password_reset_pages(client):
    user = UserFactory(username="robin")
    assert b"Forgot your password?" in client.get("/accounts/login/").content
    response = client.post("/accounts/login/", {"username": "robin", "password": "pw-for-tests-2026"})
    assert response.status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/password_reset/", {"email": user.email})
    [row] = Notification.objects.filter(event="password_reset")
    assert deliver_notification(row.pk) == "sent"
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_the_password_reset_mail_goes_through_the_outbox_and_its_link_is_the_sites(
    client, settings, django_capture_on_commit_callbacks
):
    """Written to the outbox (retried, keyed, sent once); the link uses SITE_URL, never the request's Host."""
    settings.SITE_URL = "https://desk.example.org"
    settings.ALLOWED_HOSTS = ["desk.example.org", "evil.example.org", "testserver"]
    user = UserFactory(username="robin")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/accounts/password_reset/", {"email": user.email}, HTTP_HOST="evil.example.org"
        )
    assert response.status_code == 302
    assert mail.outbox == []
    [row] = Notification.objects.filter(event="password_reset")
    assert (row.recipient, row.user, row.subject) == (user.email, user, "Reset your IncidentDesk password")
    assert len(callbacks) == 1
    assert deliver_notification(row.pk) == "sent"
    [link] = re.findall(r"https?://\S+", mail.outbox[0].body)
    assert link.startswith("https://desk.example.org/accounts/reset/")
    path = link.removeprefix("https://desk.example.org")
    assert client.get(path, follow=True).status_code == 200
    assert "evil.example.org" not in mail.outbox[0].body
    row.refresh_from_db()
    assert (row.state, row.body) == ("sent", "")  # the link is not left in the outbox for admins to read


def test_the_queue_sorts_by_the_nearest_sla_deadline_and_pages_by_it(desk):
    now = timezone.now()
    late = classified(team=desk.team)[0]
    soon = classified(team=desk.team)[0]
    breached = classified(team=desk.team)[0]
    none = classified(team=desk.team)[0]
    for incident, due, state in (
        (late, now + dt.timedelta(hours=5), "pending"),
        (soon, now + dt.timedelta(minutes=20), "warning"),
        (breached, now - dt.timedelta(minutes=30), "breached"),
    ):
        Incident.objects.filter(pk=incident.pk).update(response_due_at=due, sla_response=state)
    Incident.objects.filter(pk=none.pk).update(sla_response="", response_due_at=None)
    page = desk.get("/desk/", {"sort": "deadline", "open": "1"}).content.decode()
    refs = re.findall(r'data-ref="(INC-\d+)"', page)
    assert refs == [breached.reference, soon.reference, late.reference, none.reference]
    assert "SLA deadline" in page
    assert "breached 30 m ago" in page or "breached 29 m ago" in page
    # A keyset page after the second row goes on with the third.
    second = Incident.objects.filter(pk=soon.pk).values("id", "response_due_at").get()
    due = second["response_due_at"]
    cursor = f"{int(due.timestamp()) * 1_000_000 + due.microsecond}_{soon.pk}"
    page = desk.get("/desk/", {"sort": "deadline", "open": "1", "cursor": cursor}).content.decode()
    assert re.findall(r'data-ref="(INC-\d+)"', page) == [late.reference, none.reference]


def test_the_queue_has_an_updated_column_and_names_open_and_active_from_the_model(desk):
    classified(team=desk.team)
    page = desk.get("/desk/").content.decode()
    assert ">Updated</th>" in page
    assert "Open, incl. resolved" in page
    assert "Open: Received, Classified, Responding, Escalated, On hold, Resolved" in page
    active = desk.get("/desk/", {"state": list(Incident.ACTIVE_STATES)}).content.decode()
    assert "Active, still being worked" in active


def test_the_queue_filters_by_import_run_and_names_a_bad_one(desk):
    from incidents.models import ImportRun

    run = ImportRun.objects.create(source="old-desk.csv")
    imported = classified(team=desk.team)[0]
    other = classified(team=desk.team)[0]
    Incident.objects.filter(pk=imported.pk).update(import_run=run)
    page = desk.get("/desk/", {"import_run": run.pk}).content.decode()
    refs = re.findall(r'data-ref="(INC-\d+)"', page)
    assert refs == [imported.reference]
    assert other.reference not in refs
    assert f"import run #{run.pk}" in page
    bad = desk.get("/desk/", {"import_run": "x1"}, follow=True)
    assert bad.status_code == 200
    assert "import_run: &#x27;x1&#x27; is not the number of an import run." in bad.content.decode()
    export = desk.get("/desk/export.csv", {"import_run": "x1"})
    assert export.status_code == 400
    assert b"import_run" in export.content
    csv = desk.get("/desk/export.csv", {"import_run": run.pk})
    body = b"".join(csv.streaming_content).decode()
    assert imported.reference in body
    assert other.reference not in body


def test_the_navbar_links_the_import_runs_for_responders(desk):
    page = desk.get("/desk/").content.decode()
    assert 'href="/desk/imports/"' in page
    assert 'id="nav-interviews"' not in page  # not on an interview panel


def test_interviewers_find_interviews_in_the_navbar_and_land_on_their_sessions(client):
    from django.contrib.auth.models import Permission

    manager = UserFactory()
    manager.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="interviews")
    )
    client.force_login(manager)
    assert client.get("/").url == reverse("interviews:sessions")
    page = client.get(reverse("interviews:sessions")).content.decode()
    assert 'id="nav-interviews"' in page
    client.logout()
    reporter = UserFactory()
    client.force_login(reporter)
    assert client.get("/").url == reverse("web:my_incidents")
    assert 'id="nav-interviews"' not in client.get(reverse("web:my_incidents")).content.decode()


def test_the_timeline_tells_every_entry_in_words_with_names_not_keys(desk):
    """SLA clocks, escalation, assignment, notifications and state changes read as sentences; people and
    teams by name; a confidential reporter's address never shows."""
    sla_policy(priority=1, response=20, resolution=240)
    t0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    desk.user.first_name, desk.user.last_name = "Alex", "Agent"
    desk.user.save()
    colleague = agent(desk.team, first_name="Rosa", last_name="Ruiz", email="rosa@example.org")
    other = TeamFactory(domains=["it_service"], name="Network operations")
    with time_machine.travel(t0, tick=False):
        incident, _ = classified(
            team=desk.team, reporter_email="whistle@example.org", reporter=None, confidential=True
        )
    sweep(now=t0 + dt.timedelta(minutes=16))  # warning at 75 % of 20 min
    with time_machine.travel(t0 + dt.timedelta(minutes=17), tick=False):
        lifecycle.acknowledge_incident(incident, actor=desk.user)
        lifecycle.assign_incident(incident, actor=desk.user, assignee=colleague, note="you know the VPN")
    with time_machine.travel(t0 + dt.timedelta(minutes=30), tick=False):
        lifecycle.escalate_incident(incident, actor=desk.user, team=other, reason="needs the router team")
        lifecycle.hold_incident(incident, actor=None, reason="awaiting_vendor")
    from escalation.models import Notification

    Notification.objects.filter(event="assigned").update(state="sent")
    from incidents import timeline

    timeline.record_notification(
        incident=incident, channel="email", recipient="rosa@example.org", event="assigned", version=3
    )
    timeline.record_notification(
        incident=incident,
        channel="email",
        recipient="whistle@example.org",
        event="reporter_resolved",
        version=3,
    )
    page = desk.get(f"/desk/incidents/{incident.reference}/").content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Reported through the web form" in text or "Reported through the api" in text
    assert "Response clock started: due Mon 1 Jun" in text
    assert "Resolution clock started: due Mon 1 Jun" in text
    assert "Acknowledged: Alex Agent is working on it (responding)" in text
    assert "Assigned to Rosa Ruiz (was Alex Agent)" in text
    assert "Note: you know the VPN" in text
    assert "Warning: the response target is near" in text
    assert "Escalated to Network operations (level 1)" in text
    assert "Reason: needs the router team" in text
    assert "Put on hold: awaiting a vendor" in text
    assert "clock paused" in text
    assert "Notified Rosa Ruiz by e-mail: assigned to them" in text
    assert "Notified the reporter by e-mail" in text
    assert "whistle@example.org" not in page
    assert ">SLA<" not in page
    assert ">Escalation<" not in page
    assert "IncidentDesk (automatic)" in text  # the clocks are the desk's own
    assert f"{desk.team.slug}" not in text.replace(f"/desk/teams/{desk.team.slug}/", "")


# --- problems from the console ----------------------------------------------------------------------


def test_a_problem_is_opened_from_an_incident_linked_unlinked_given_follow_ups_and_moved(desk):
    from incidents.models import Problem

    incident, _ = classified(team=desk.team)
    other, _ = classified(team=desk.team)
    page = desk.get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert "Open a problem from this incident" in page
    response = desk.post(
        f"/desk/incidents/{incident.reference}/problem/", {"what": "create", "title": "VPN keeps dropping"}
    )
    problem = Problem.objects.get()
    assert response.url == f"/desk/problems/{problem.pk}/"
    incident.refresh_from_db()
    assert incident.problem_id == problem.pk
    assert incident.timeline.filter(kind="problem").exists()
    # Link another incident from the problem page, and unlink it again.
    desk.post(f"/desk/problems/{problem.pk}/incidents/", {"incident": other.reference, "what": "link"})
    other.refresh_from_db()
    assert other.problem_id == problem.pk
    desk.post(f"/desk/problems/{problem.pk}/incidents/", {"incident": other.reference, "what": "unlink"})
    other.refresh_from_db()
    assert other.problem_id is None
    # Link from the incident page by the problem's reference, then unlink there.
    desk.post(f"/desk/incidents/{other.reference}/problem/", {"what": "link", "problem": problem.reference})
    other.refresh_from_db()
    assert other.problem_id == problem.pk
    desk.post(f"/desk/incidents/{other.reference}/problem/", {"what": "unlink"})
    other.refresh_from_db()
    assert other.problem_id is None
    bad = desk.post(
        f"/desk/incidents/{other.reference}/problem/", {"what": "link", "problem": "PRB-999999"}, follow=True
    )
    assert "problem: no problem" in bad.content.decode()
    # Follow-ups: a clear message naming the field when the input is bad, then one added.
    refused = desk.post(f"/desk/problems/{problem.pk}/follow-ups/", {"title": "Replace"}, follow=True)
    assert "owner: This field is required." in refused.content.decode()
    desk.post(
        f"/desk/problems/{problem.pk}/follow-ups/",
        {"title": "Replace the concentrator", "owner": desk.user.pk, "due_date": "2026-12-24"},
    )
    assert problem.follow_ups.get().title == "Replace the concentrator"
    # The state moves through the problems service; the page names the new state in words.
    problem.refresh_from_db()
    stale = desk.post(
        f"/desk/problems/{problem.pk}/state/", {"state": "resolved", "version": problem.version + 99},
        follow=True,
    )  # fmt: skip
    problem.refresh_from_db()
    assert problem.state == "open"
    assert "alert-danger" in stale.content.decode()
    refused = desk.post(f"/desk/problems/{problem.pk}/state/", {"state": "resolved"}, follow=True)
    assert "root_cause: A resolved problem needs its root cause." in refused.content.decode()
    desk.post(f"/desk/problems/{problem.pk}/edit/", {"root_cause": "Firmware bug", "workaround": "Reboot"})
    moved = desk.post(f"/desk/problems/{problem.pk}/state/", {"state": "resolved"}, follow=True)
    problem.refresh_from_db()
    assert problem.state == "resolved"
    assert f"{problem.reference} is now resolved." in moved.content.decode()
    page = desk.get(f"/desk/problems/{problem.pk}/").content.decode()
    assert "Replace the concentrator" in page
    assert "Add a follow-up action" in page
    assert "Link an incident" in page
    assert f"version {problem.version}" not in page


def test_similar_incidents_show_words_not_markdown():
    from incidents.templatetags.desk import plain_markdown

    assert plain_markdown("**VPN** restarted with `systemctl restart`\n\n- then *checked*") == (
        "VPN restarted with systemctl restart then checked"
    )


def test_saved_views_with_the_retired_sla_soon_are_rewritten_to_warning(desk):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0019_saved_view_sla_i11")
    old = SavedQueueView.objects.create(user=desk.user, name="Soon", query="open=1&sla=soon&sort=deadline")
    other = SavedQueueView.objects.create(user=desk.user, name="Title", query="q=sla%3Dsoon&open=1")
    current = SavedQueueView.objects.create(user=desk.user, name="Warn", query="sla=warning")

    migration.rewrite_sla_soon(apps, None)
    migration.rewrite_sla_soon(apps, None)  # twice: nothing more changes

    old.refresh_from_db()
    other.refresh_from_db()
    current.refresh_from_db()
    assert old.query == "open=1&sla=warning&sort=deadline"
    assert other.query == "q=sla%3Dsoon&open=1"  # a search for the text "sla=soon" is not the filter
    assert current.query == "sla=warning"
    page = desk.get("/desk/?" + old.query).content.decode()
    assert "Some filters were not understood" not in page
    assert '<option value="warning" selected>' in page


def test_a_bad_import_run_drops_itself_not_the_other_filters(desk):
    """The API's filter set reads `import_run` too: a bad one must not void the queue's other filters."""
    received = report(domain=domain("it_service"))
    other = classified(team=desk.team)[0]
    for bad in ("x1", "0"):
        page = desk.get("/desk/", {"import_run": bad, "state": "received"}).content.decode()
        refs = re.findall(r'data-ref="(INC-\d+)"', page)
        assert received.reference in refs, bad
        assert other.reference not in refs, bad
        assert "Some filters were not understood" not in page, bad


def test_the_queue_audits_the_restricted_rows_it_shows_in_one_insert_and_nothing_else(client):
    from incidents.models import AuditEvent

    team = TeamFactory(domains=["it_service", "security"])
    user = agent(team)
    client.force_login(user)
    secret = [report(title=f"Phishing {i}", domain=domain("security")) for i in range(3)]
    report(title="Printer", domain=domain("it_service"))
    poll = {"HX-Request": "true", "HX-Target": "queue-results"}
    for headers in ({}, poll):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/desk/", headers=headers).status_code == 200
        inserts = [q["sql"] for q in ctx.captured_queries if "incidents_auditevent" in q["sql"]]
        assert len(inserts) == 1
    audited = sorted(AuditEvent.objects.filter(user_id=user.pk).values_list("incident_id", "what", "detail"))
    assert audited == sorted([(i.pk, "view", "GET queue") for i in secret] * 2)

    before = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as ctx:
        client.get("/desk/", {"domain": "it_service"}, headers=poll)  # a page without restricted rows
    assert not [q for q in ctx.captured_queries if "incidents_auditevent" in q["sql"]]
    assert AuditEvent.objects.count() == before


@pytest.mark.postgres
def test_the_similar_panel_ranks_once_per_version_and_shows_only_what_the_reader_may_see_now(client):
    from django.core.cache import cache

    cache.clear()
    team = TeamFactory(domains=["it_service"])
    user = agent(team)
    client.force_login(user)
    past = incident_in(S.RESOLVED, title="VPN drops every ten minutes on floor 2")
    other = incident_in(S.CLOSED, title="VPN drops every ten minutes on floor 3")
    current = incident_in(S.RESPONDING, title="VPN drops every ten minutes on floor 4")
    url = f"/desk/incidents/{current.reference}/"

    def similar_shown() -> tuple[list[str], int]:
        with CaptureQueriesContext(connection) as ctx:
            page = client.get(url).content.decode()
        panel = page.split('id="similar-incidents"', 1)[1].split("</section>", 1)[0]
        ranked = sum("similarity(" in q["sql"] for q in ctx.captured_queries)
        return re.findall(r"INC-\d+", panel), ranked

    first, ranked = similar_shown()
    assert set(first) >= {past.reference, other.reference}
    assert ranked == 1
    again, ranked = similar_shown()
    assert again == first
    assert ranked == 0  # the ranking is reused
    # Moved to a restricted domain this agent's team does not handle: gone at once, the ranking reused.
    Incident.objects.filter(pk=past.pk).update(domain=domain("security"))
    now, ranked = similar_shown()
    assert past.reference not in now
    assert other.reference in now
    assert ranked == 0
    # A new version of the incident (an edit) ranks again.
    services.edit_incident(
        Incident.objects.get(pk=current.pk), actor=user, version=current.version, title="Printer jams"
    )
    _, ranked = similar_shown()
    assert ranked == 1


def test_the_field_tag_writes_the_field_template_byte_for_byte():
    """The incident page renders its fields with {% field_html %} instead of including _field.html: the same
    HTML for every field of every form it shows, unbound and bound with errors (help, aria, invalid)."""
    from django.template.loader import render_to_string

    from incidents.forms import ACTION_FORMS, AttachForm, CommentForm, EditForm
    from incidents.templatetags.desk import field_html

    incident_in(S.RESPONDING)  # teams, domains, categories and responders for the selects
    forms = [EditForm(), CommentForm(), AttachForm(), EditForm({"title": "", "version": "x"})]
    for name, form_class in ACTION_FORMS.items():
        forms += [form_class(prefix=name), form_class({f"{name}-version": "x"}, prefix=name)]
    checked = 0
    for form in forms:
        form.is_valid()
        for field in form:
            for wrapper in ("", "classify-harm"):
                context = {"field": field, "wrapper_class": wrapper}
                assert field_html(field, wrapper) == render_to_string("incidents/_field.html", context)
                checked += 1
    assert checked > 60


# --- the page chrome, rendered once per process (incidents/templatetags/desk.py: chrome) -----------------------


def csrf_secrets(page: str) -> set[str]:
    """The CSRF secret behind every token a page carries (the header htmx sends and each form's field)."""
    from django.middleware.csrf import _unmask_cipher_token

    tokens = re.findall(r'"X-CSRFToken": "([^"]+)"', page) + re.findall(
        r'csrfmiddlewaretoken" value="([^"]+)"', page
    )
    return {_unmask_cipher_token(token) for token in tokens}


def test_the_cached_navigation_is_never_another_users():
    """The navbar and footer are rendered once per set of roles and reused: a responder's links, a staff member's
    administration link, one person's name or CSRF token must never show on someone else's page."""
    team = TeamFactory(domains=["it_service"])
    responder, reporter = Client(), Client()
    responder.force_login(agent(team, first_name="Alex", last_name="Agent"))
    reporter.force_login(UserFactory(first_name="Robin", last_name="Reporter"))
    staff = Client()
    staff.force_login(UserFactory(first_name="Sam", last_name="Staff", is_staff=True))

    for _ in range(2):  # the second time round, every part comes from the cache
        pages = {
            name: c.get("/report/")
            for name, c in (("responder", responder), ("reporter", reporter), ("staff", staff))
        }
        html = {name: page.content.decode() for name, page in pages.items()}
        assert 'href="/desk/"' in html["responder"]
        assert 'id="shortcuts"' in html["responder"]
        assert "Alex Agent" in html["responder"]
        assert "Robin" not in html["responder"]
        for other in ("reporter", "staff"):
            assert 'href="/desk/"' not in html[other]
            assert 'id="shortcuts"' not in html[other]
            assert "Alex Agent" not in html[other]
        assert "Robin Reporter" in html["reporter"]
        assert "Sam Staff" not in html["reporter"]
        assert "Administration" in html["staff"]
        assert "Sam Staff" in html["staff"]
        assert "Administration" not in html["responder"]
        assert "Administration" not in html["reporter"]
        clients = {"responder": responder, "reporter": reporter, "staff": staff}
        for name, c in clients.items():  # each page's tokens are its own session's, never a cached one
            assert csrf_secrets(html[name]) == {c.cookies["csrftoken"].value}
    anonymous = Client().get("/report/").content.decode()
    assert "Sign in" in anonymous
    assert "Sign out" not in anonymous
    assert "Robin" not in anonymous


GERMAN = {"Queue": "Warteschlange", "Sign out": "Abmelden", "High": "Hoch", "Received": "Eingegangen"}


def test_a_language_switch_changes_the_cached_navigation_options_and_rows(desk, monkeypatch):
    from django.utils import translation
    from django.utils.translation import trans_real

    report(domain=domain("it_service"), title="Printer jams")

    def queue() -> str:
        return desk.get("/desk/").content.decode()

    english = queue()
    assert ">Queue</a>" in english
    assert ">Sign out<" in english
    assert ">High</option>" in english
    assert 'data-state="received">Received</span>' in english
    german_catalog = trans_real.translation("de")
    monkeypatch.setattr(german_catalog, "gettext", lambda message: GERMAN.get(message, message))
    with translation.override("de"):
        german = queue()
    assert ">Warteschlange</a>" in german
    assert ">Abmelden<" in german
    assert ">Hoch</option>" in german
    assert 'data-state="received">Eingegangen</span>' in german
    assert ">Queue</a>" not in german
    assert ">High</option>" not in german
    english_again = queue()
    assert ">Queue</a>" in english_again
    assert ">High</option>" in english_again
    assert "Warteschlange" not in english_again
    assert "Eingegangen" not in english_again


def test_the_incident_pages_urls_reversed_once_are_reverses():
    """reference_url reverses each URL once per process, URLconf and script prefix, with a placeholder where the
    reference goes: what it answers is reverse's, for any reference, under any prefix."""
    from django.urls import set_script_prefix

    from incidents.templatetags.desk import reference_url

    names = ("web:incident", "web:incident_edit", "web:incident_problem", "escalation:incident_file_report")
    for prefix in ("/", "/desk-app/", "/"):
        set_script_prefix(prefix)
        try:
            for reference in ("INC-000001", "INC-000042", "inc-1234567", "INC-000000"):
                for name in names:
                    assert reference_url(name, reference) == reverse(name, args=[reference])
            assert reference_url("web:queue") == reverse("web:queue")
            # Not a reference: reversed (and quoted) as the {% url %} tag would.
            assert reference_url("web:incident", "a b&c") == reverse("web:incident", args=["a b&c"])
        finally:
            set_script_prefix("/")
