"""Parsing the corpus of real-world message shapes (tests/intake/messages/)."""

from __future__ import annotations

import pytest

from intake.mail import MessageTooLarge, html_to_text, parse

from .helpers import huge_message, message

LIMIT = 25 * 1024 * 1024


def parsed(name, **placeholders):
    return parse(message(name, **placeholders), limit=LIMIT)


def test_multipart_alternative_prefers_the_plain_text():
    msg = parsed("multipart_alternative.eml")

    assert msg.sender == "alice@example.org"
    assert msg.sender_name == "Alice Example"
    assert msg.subject == "Printer on floor 3 prints blank pages"
    assert msg.message_id == "20260302091200.1234@mail.example.org"
    assert "since this morning \u2013 toner is full." in msg.text
    assert "<" not in msg.text
    assert msg.machine == ""
    assert msg.attachments == []


def test_html_only_mail_becomes_sanitised_text():
    text = parsed("html_only.eml").text

    assert 'The VPN says "token invalid" & disconnects.' in text
    assert "- Laptop: T14" in text
    assert "Please help.\nBob" in text
    for gone in ("alert(", "color: red", "steal", "tracker.example.com", "<"):
        assert gone not in text


def test_html_to_text_keeps_no_markup_even_when_nested_badly():
    assert html_to_text("<p>a<script>x</script><b>b</p><iframe src=x>c</iframe>") == "ab\nc"


def test_attachments_are_extracted_with_their_names():
    msg = parsed("attachments.eml")

    assert msg.text == "The nightly backup failed again. Logs attached."
    assert [(a.filename, a.content_type) for a in msg.attachments] == [
        ("backup.log", "text/plain"),
        ("fix.exe", "application/octet-stream"),
    ]
    assert msg.attachments[0].data.startswith(b"2026-03-02 09:00:01 ERROR disk full")
    assert msg.attachments[1].data.startswith(b"MZ")


@pytest.mark.parametrize(
    ("name", "subject", "words", "sender"),
    [
        (
            "iso_8859_1.eml",
            "Problème de réseau",
            "Le réseau du bâtiment B est coupé depuis 11h. Très gênant !",
            "rene@example.fr",
        ),
        (
            "windows_1252.eml",
            "Invoice tool shows wrong amounts",
            "shows \u201c100 \u20ac\u201d where it should say 1 000 \u20ac \u2013 all",
            "dave@example.org",
        ),
        (
            "shift_jis.eml",
            "サーバー障害",
            "サーバーが応答しません。至急確認してください。",
            "tanaka@example.jp",
        ),
        (
            "encoded_subject.eml",
            "Café badge reader \u2013 door stays locked \U0001f512",
            "at the café entrance",
            "erin@example.org",
        ),
    ],
)
def test_non_utf8_charsets_and_encoded_words_decode(name, subject, words, sender):
    msg = parsed(name)

    assert msg.subject == subject
    assert words in msg.text
    assert msg.sender == sender


def test_shift_jis_sender_name_is_decoded_from_iso_2022_jp():
    assert parsed("shift_jis.eml").sender_name == "田中"


def test_reply_headers_give_the_referenced_message_ids():
    msg = parsed("reply_in_reply_to.eml", NOTIFICATION_KEY="k123")

    assert msg.references == ["k123@localhost", "older@example.org", "k123@localhost"]


@pytest.mark.parametrize(
    ("name", "machine"),
    [("auto_reply.eml", "auto_reply"), ("precedence_bulk.eml", "auto_reply"), ("bounce.eml", "bounce")],
)
def test_machines_are_recognised(name, machine):
    assert parsed(name, REFERENCE="INC-000001").machine == machine


def test_a_huge_message_is_refused_before_parsing():
    raw = huge_message(LIMIT + 1)

    with pytest.raises(MessageTooLarge, match=r"over the limit of 26214400 bytes"):
        parse(raw, limit=LIMIT)


def test_garbage_does_not_crash_the_parser():
    msg = parse(b"\x00\xff not a message at all \r\n\r\n\x80\x81", limit=LIMIT)

    assert msg.sender == ""
