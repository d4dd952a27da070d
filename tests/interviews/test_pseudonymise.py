from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interviews.pseudonymise import Pseudonymiser, detect, format_offset

START = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)
PEOPLE = [["Alice Miller", "Alice", "Miller", "amiller", "alice@example.org"], ["Bob Stone", "bstone"]]


def kinds(text, names=()):
    return [(f.kind, f.text) for f in detect(text, known_names=names)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ops@acme.com now", [("email", "ops@acme.com")]),
        ("db01.corp.internal is down", [("host", "db01.corp.internal")]),
        ("ping 10.1.2.3 failed", [("ip", "10.1.2.3")]),
        ("fe80::1:2 answered", [("ip", "fe80::1:2")]),
        ("see INC-000042 and CHG-1234", [("reference", "INC-000042"), ("reference", "CHG-1234")]),
        ("Dr. Brown was called", [("person", "Dr. Brown")]),
        ("at 14:32 and on 2026-03-05 16:05", [("datetime", "14:32"), ("datetime", "2026-03-05 16:05")]),
        ("on 05.03.2026 13:55", [("datetime", "05.03.2026 13:55")]),
    ],
)
def test_each_detector(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "host-1.example.invalid and person-a@example.invalid",
        "192.0.2.7 and 2001:db8::1 are documentation addresses",
        "CVE-2024-1234 is public, and so is RFC-5737",
        "a ratio of 3:1, version 2.4, T+14 min, T-5 min, T+2 h 05 min",
        "nginx.conf and config.yaml are files, not hosts",
        "www.example.com is reserved",
    ],
)
def test_what_is_not_identifying_is_not_found(text):
    assert kinds(text) == []


def test_known_names_match_capitalised_as_written_and_usernames_in_any_case():
    names = ["Max", "mpower"]
    assert kinds("Max raised the max memory; MPOWER paged", names) == [
        ("person", "Max"),
        ("person", "MPOWER"),
    ]


def test_pseudonyms_are_consistent_across_texts_and_aliases():
    pseudo = Pseudonymiser(people=PEOPLE, anchor=START)
    first = pseudo("Alice Miller (alice@example.org) saw db01.corp.internal at 10.1.2.3 fail at 14:32.")
    second = pseudo("Miller told bstone; amiller pinged 10.1.2.3 and db01.corp.internal again at 16:05.")

    assert first == (
        "Person A (person-a@example.invalid) saw host-1.example.invalid at 192.0.2.1 fail at T+32 min."
    )
    assert (
        second
        == "Person A told Person B; Person A pinged 192.0.2.1 and host-1.example.invalid again at T+2 h 05 min."
    )
    assert detect(first + second, known_names=pseudo.known_names) == []


def test_titles_are_kept_and_unknown_people_get_their_own_pseudonym():
    pseudo = Pseudonymiser(people=PEOPLE, anchor=START)
    assert pseudo("Dr. Brown phoned Nurse Alice") == "Dr. Person A phoned Nurse Person B"


def test_without_an_anchor_times_are_removed():
    assert Pseudonymiser()("at 14:32") == "at [time]"


def test_offsets():
    assert format_offset(0) == "T+0 min"
    assert format_offset(125) == "T+2 h 05 min"
    assert format_offset(-5) == "T-5 min"
    assert format_offset(24 * 60 + 61) == "T+1 d 1 h 01 min"


words = st.lists(
    st.sampled_from(
        [
            "Alice",
            "Miller",
            "bstone",
            "alice@example.org",
            "10.0.0.7",
            "db.corp.internal",
            "INC-000042",
            "12:30",
            "the",
            "server",
            "failed",
            ".",
            ",",
        ]
    ),
    max_size=30,
)


@given(words)
@settings(deadline=None)  # the first example loads the NER model
def test_pseudonymised_text_never_trips_a_detector(tokens):
    pseudo = Pseudonymiser(people=PEOPLE, anchor=START)
    out = pseudo(" ".join(tokens))
    assert detect(out, known_names=pseudo.known_names) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sohn unter 0171 2345678 erreichbar", [("phone", "0171 2345678")]),
        (
            "call (617) 555-0142 or +44 20 7946 0958",
            [("phone", "(617) 555-0142"), ("phone", "+44 20 7946 0958")],
        ),
        ("Zentrale (06221 56-0) anrufen", [("phone", "06221 56-0")]),
        ("Patientin (geb. 14.03.1957) gestürzt", [("birthdate", "14.03.1957")]),
        ("born March 14, 1939 in Leeds", [("birthdate", "March 14, 1939")]),
        ("DOB 1961-02-03, MRN 48213377", [("birthdate", "1961-02-03"), ("reference", "48213377")]),
        (
            "Die Patientin, Jahrgang 1952, hat die Fallnummer 2026-004711.",
            [("birthdate", "1952"), ("reference", "2026-004711")],
        ),
        ("Seriennummer des Druckers: CNB8K2Z0QX", [("device", "CNB8K2Z0QX")]),
        (
            "MAC 3C:52:82:1A:7F:E0 and IMEI 356938035643809",
            [("device", "3C:52:82:1A:7F:E0"), ("device", "356938035643809")],
        ),
        ("the firewall fw-edge-2 and \\\\fs01\\share", [("host", "fw-edge-2"), ("host", "fs01")]),
        ("request RITM0049213 is open", [("reference", "RITM0049213")]),
        ("Herr Becker und Frau Yilmaz", [("person", "Herr Becker"), ("person", "Frau Yilmaz")]),
        ("Pfleger Jonas Weber fand sie", [("person", "Pfleger Jonas Weber")]),
        ("Kollege Stefan Hoffmann half", [("person", "Stefan Hoffmann")]),
        (
            "Patient John Miller fell; his wife Linda Miller called",
            [("person", "John Miller"), ("person", "Linda Miller")],
        ),
    ],
)
def test_each_new_detector(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Die Firewall verwirft Pakete; die Regel wurde zurückgesetzt.",
        "COVID-19 ward, SHA-256 sums, ISO 27001 audit, Windows 11, TLS 1.2, port 8443",
        "Version 2.4.1 läuft seit 14 Tagen; Station 4B und Zimmer 412",
        "Person A called Person B at T+5 min from host-2 about REF-A, device-1 and +00 0000 0001.",
        "[date of birth] and [date] stay as they are",
    ],
)
def test_ordinary_words_numbers_and_pseudonyms_are_not_found(text):
    assert kinds(text) == []


def test_what_only_the_model_or_a_lone_first_name_suggests_is_flagged_not_replaced():
    pseudo = Pseudonymiser()
    out, flagged = pseudo.replace("Die Pumpe Evita V800 lief.")
    assert out == "Die Pumpe Evita V800 lief."
    assert [(f.kind, f.text) for f in flagged] == [("person", "Evita")]


def test_names_are_learnt_before_anything_is_replaced():
    pseudo = Pseudonymiser(anchor=START)
    texts = [
        "Frau Schulz wurde geröntgt.",
        "Rückruf an Herrn Schulz.",
        "Patientin Maria Schulz, Sohn Thomas Schulz.",
    ]
    pseudo.learn(texts)
    first, second, third = (pseudo(t) for t in texts)
    assert third == "Patientin Person A, Sohn Person B."
    assert first == "Frau Person A wurde geröntgt."  # the woman of the two
    assert second == "Rückruf an Herrn Person B."  # the man of the two


def test_an_account_or_mailbox_built_from_a_name_is_that_person():
    pseudo = Pseudonymiser(people=[["Karin Fischer", "Karin", "Fischer"]])
    assert pseudo("Konto kfischer von Karin Fischer, julia.x@a.de, karin.fischer@acme.com") == (
        "Konto Person A von Person A, mailbox-1@example.invalid, person-a@example.invalid"
    )


def test_a_date_far_from_the_incident_is_removed_not_turned_into_an_offset():
    assert Pseudonymiser(anchor=START)("operated on 2019-05-02, seen on 2026-03-04") == (
        "operated on [date], seen on T-1 d 14 h 00 min"
    )
