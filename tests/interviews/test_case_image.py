"""The optional presentation image of a case: checked like an incident attachment, re-encoded without
metadata, served only to the case library and, once the interview started, to its candidate."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from interviews import cases, lifecycle
from interviews.models import CaseVersion
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.interviews.helpers import (
    SECRET_FACT_TEXT,
    case_doc,
    interviewer,
    lead_of,
    new_session,
    png_bytes,
    published_version,
)

pytestmark = pytest.mark.django_db
BASE = "/api/v1/interviews/cases"


def jpeg_with_exif(text: str) -> bytes:
    image = Image.new("RGB", (20, 20), (10, 120, 10))
    exif = Image.Exif()
    exif[0x010E] = text  # ImageDescription
    exif[0x013B] = "Alice Miller"  # Artist
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def draft(author) -> CaseVersion:
    version, _ = cases.apply_case_document(case_doc(slug="with-image"), actor=author)
    return version


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("name", "content", "mime"),
    [
        ("slide.png", png_bytes(text=SECRET_FACT_TEXT), "image/png"),
        ("photo.jpg", jpeg_with_exif(SECRET_FACT_TEXT), "image/jpeg"),
    ],
)
def test_an_image_is_stored_without_its_metadata_and_served_to_the_library(
    name, content, mime, attachment_dir
):
    author = interviewer()
    draft(author)
    api = client_for(author)

    answer = api.post(
        f"{BASE}/with-image/image/", {"image": SimpleUploadedFile(name, content)}, format="multipart"
    )

    assert answer.status_code == 200, answer.json()
    assert answer.json()["image"] == f"{BASE}/with-image/image/?version=1"
    served = api.get(answer.json()["image"])
    assert served.status_code == 200
    assert served["Content-Type"] == mime
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"] == "default-src 'none'; sandbox"
    data = body_of(served)
    assert SECRET_FACT_TEXT.encode() not in data
    assert b"Alice Miller" not in data
    stored = Image.open(io.BytesIO(data))
    assert stored.size == Image.open(io.BytesIO(content)).size
    assert not stored.info.get("Comment")
    assert not stored.getexif()
    files = [p for p in attachment_dir.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert name not in str(files[0])  # a random name, never the uploader's
    assert client_for(UserFactory()).get(answer.json()["image"]).status_code == 403


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("slide.png", b"", "empty"),
        ("notes.txt", b"just text", "A PNG, JPEG or WebP image"),
        ("slide.png", b"<html><script>alert(1)</script></html>", "active content"),
        ("slide.jpg", png_bytes(), "does not match the extension"),
        ("slide.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "cannot be read"),
        ("doc.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "A PNG, JPEG or WebP image"),
        ("run.exe", b"MZ\x90\x00", "not accepted"),
    ],
)
def test_bad_images_are_refused_naming_the_field_and_nothing_is_stored(
    name, content, message, attachment_dir
):
    author = interviewer()
    draft(author)

    answer = client_for(author).post(
        f"{BASE}/with-image/image/", {"image": SimpleUploadedFile(name, content)}, format="multipart"
    )

    assert answer.status_code == 400
    assert message in " ".join(answer.json()["image"])
    assert [p for p in attachment_dir.rglob("*") if p.is_file()] == []
    assert not CaseVersion.objects.get().image


def test_too_large_images_are_refused(settings, attachment_dir):
    author = interviewer()
    draft(author)
    api = client_for(author)
    huge = io.BytesIO()
    Image.new("L", (6000, 4200)).save(huge, format="PNG")  # 25.2 megapixels, a small file
    answer = api.post(
        f"{BASE}/with-image/image/",
        {"image": SimpleUploadedFile("big.png", huge.getvalue())},
        format="multipart",
    )
    assert answer.status_code == 400
    assert "too large" in answer.json()["image"][0]
    settings.ATTACHMENT_MAX_BYTES = 100
    answer = api.post(
        f"{BASE}/with-image/image/", {"image": SimpleUploadedFile("s.png", png_bytes())}, format="multipart"
    )
    assert answer.status_code == 400
    assert "larger than" in answer.json()["image"][0]
    assert api.post(f"{BASE}/with-image/image/", {}, format="multipart").status_code == 400


def test_only_a_draft_changes_its_image_and_new_versions_keep_it(attachment_dir):
    version = published_version(image=png_bytes())
    api = client_for(interviewer())
    slug = version.case.slug

    refused = api.post(
        f"{BASE}/{slug}/image/", {"image": SimpleUploadedFile("x.png", png_bytes())}, format="multipart"
    )
    assert refused.status_code == 409
    assert api.delete(f"{BASE}/{slug}/image/").status_code == 409

    copy = api.post(f"{BASE}/{slug}/new-version/").json()
    assert copy["image"] == f"{BASE}/{slug}/image/?version=2"
    assert api.delete(f"{BASE}/{slug}/image/").json()["image"] is None
    assert api.delete(f"{BASE}/{slug}/image/").json()["image"] is None  # twice: no change
    assert api.get(f"{BASE}/{slug}/image/?version=1").status_code == 200  # the published one keeps it
    assert api.get(f"{BASE}/{slug}/image/").status_code == 404


def test_the_candidate_gets_the_image_once_the_interview_started(attachment_dir, client):
    session = new_session(published_version(image=png_bytes()))
    url = f"/api/v1/interviews/candidate/{session.candidate_token}/image/"
    assert client.get(url).status_code == 404
    lifecycle.start_session(session, actor=lead_of(session))
    view = client.get(f"/api/v1/interviews/candidate/{session.candidate_token}/").json()
    assert view["case"]["image"] == url
    served = client.get(url)
    assert served.status_code == 200
    assert Image.open(io.BytesIO(body_of(served))).getpixel((1, 1)) == (0, 0, 255)
    without = new_session(published_version())
    lifecycle.start_session(without, actor=lead_of(without))
    assert client.get(f"/api/v1/interviews/candidate/{without.candidate_token}/image/").status_code == 404
    assert (
        client.get(f"/api/v1/interviews/candidate/{without.candidate_token}/").json()["case"]["image"] == ""
    )
