from __future__ import annotations

import os
import stat

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents.models import Attachment, Incident
from tests.conftest import client_for
from tests.factories import UserFactory, incident_in, responder_of

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def upload(client, incident, name, content, **extra):
    return client.post(
        f"/api/v1/incidents/{incident.reference}/attachments/",
        {"file": SimpleUploadedFile(name, content), **extra},
        format="multipart",
    )


def test_upload_and_authorised_download(attachment_dir):
    reporter = UserFactory()
    incident = incident_in(Incident.State.RESPONDING, reporter=reporter)
    client = client_for(reporter)
    response = upload(client, incident, "screen shot.png", PNG)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["filename"] == "screen shot.png"
    assert body["content_type"] == "image/png"
    stored = Attachment.objects.get(pk=body["id"])
    path = stored.file.path
    assert "screen" not in os.path.basename(path)  # never the uploader's name on disk
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o007 == 0  # not world-readable

    download = client.get(body["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"

    stranger = client_for(UserFactory())
    assert stranger.get(body["download_url"]).status_code == 404
    other = incident_in(Incident.State.RECEIVED, reporter=reporter)
    crossed = body["download_url"].replace(incident.reference, other.reference)
    assert client.get(crossed).status_code == 404  # the attachment must belong to the incident in the URL
    assert incident.timeline.filter(kind="attachment").count() == 1


def test_internal_attachments_are_hidden_from_the_reporter(attachment_dir):
    reporter = UserFactory()
    incident = incident_in(Incident.State.RESPONDING, reporter=reporter)
    response = upload(client_for(responder_of(incident)), incident, "trace.log", b"stack trace", public=False)
    assert response.status_code == 201
    client = client_for(reporter)
    assert client.get(f"/api/v1/incidents/{incident.reference}/attachments/").json()["results"] == []
    assert client.get(response.json()["download_url"]).status_code == 404


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("invoice.pdf", b"MZ\x90\x00 windows executable"),
        ("page.txt", b"<html><script>alert(1)</script></html>"),
        ("image.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
        ("photo.png", b"%PDF-1.4 not a png"),
        ("tool.exe", b"anything"),
        ("noext", b"anything"),
        ("empty.txt", b""),
        ("big.txt", b"x" * (10 * 1024 * 1024 + 1)),
        ("run.sh.txt", b"#!/bin/sh\nrm -rf /"),
    ],
)
def test_dangerous_or_oversized_uploads_are_refused_and_nothing_is_stored(name, content, attachment_dir):
    incident = incident_in(Incident.State.RESPONDING)
    response = upload(client_for(responder_of(incident)), incident, name, content)
    assert response.status_code == 400
    assert "file" in response.json()
    assert Attachment.objects.count() == 0
    assert [p for p in attachment_dir.rglob("*") if p.is_file()] == []


def test_path_tricks_in_file_names_are_neutralised(attachment_dir):
    incident = incident_in(Incident.State.RESPONDING)
    response = upload(client_for(responder_of(incident)), incident, "../../etc/\u202epasswd.txt", b"hello")
    assert response.status_code == 201
    assert response.json()["filename"] == "passwd.txt"
    stored = Attachment.objects.get()
    assert os.path.realpath(stored.file.path).startswith(os.path.realpath(attachment_dir))
