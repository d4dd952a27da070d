"""Rule-based detection and consistent pseudonyms for cases drafted from real incidents.

Detectors find people (the names the incident knows, and titles such as "Dr. Miller"), e-mail
addresses, host names, IPv4 and IPv6 addresses, ticket references and absolute dates and times. A
`Pseudonymiser` replaces each with a pseudonym that stays the same for the same original across every
text of one case ("Person A", "person-a@example.invalid", "host-1.example.invalid", "192.0.2.1",
"REF-1") and turns absolute times into offsets from the incident's start ("T+14 min").

The pseudonyms are chosen so that the detectors never find them again: reserved example domains
(RFC 2606) and documentation address ranges (RFC 5737, RFC 3849) are not reported.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo

PERSON = "person"
EMAIL = "email"
HOST = "host"
IP = "ip"
REFERENCE = "reference"
DATETIME = "datetime"
KINDS = (PERSON, EMAIL, HOST, IP, REFERENCE, DATETIME)

TLDS = (
    "com|net|org|io|info|biz|local|internal|corp|lan|intra|intranet|home|cloud|dev|app|edu|gov|mil|"
    "de|uk|fr|nl|be|ch|at|es|it|se|no|dk|fi|pl|eu|us|ca|au|jp|cn|in|br"
)
EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
HOST_RE = re.compile(
    rf"(?<![\w@.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+(?:{TLDS})\b(?![.-]\w)", re.I
)
IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])")
REFERENCE_RE = re.compile(r"\b(?!CVE-|CWE-|ISO-|RFC-|SHA-|TLS-|UTF-)[A-Z][A-Z0-9]{1,9}-\d{2,}\b")
TITLE_RE = re.compile(
    r"\b(?:Dr|Mr|Mrs|Ms|Mx|Prof|Nurse|Sister|Brother)\.?\s+[A-Z][a-z]+(?:[ -][A-Z][a-z]+)?\b"
)
DATETIME_RE = re.compile(
    r"(?<![\w+:])(?:"
    r"(?P<iso>\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
    r"|(?P<dmy>\d{1,2}[./]\d{1,2}[./]\d{2,4}(?:,?\s+\d{1,2}:\d{2}(?::\d{2})?)?)"
    r"|(?P<clock>(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s?[AaPp]\.?[Mm]\.?)?)"
    r")(?![\w:])"
)

RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_SUFFIXES = (".example", ".invalid", ".test", ".localhost")
DOC_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str
    start: int
    end: int


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


def detect(text: str, *, known_names: Iterable[str] = ()) -> list[Finding]:
    """Everything in `text` that identifies a person, system, ticket or moment, without overlaps.

    Where two findings overlap the earlier, longer one wins (an e-mail address is not also a host).
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
    for regex in (IPV4_RE, IPV6_RE):
        for match in regex.finditer(text):
            if _documentation_ip(match.group()) is False:
                candidates.append(Finding(IP, match.group(), match.start(), match.end()))
    for match in REFERENCE_RE.finditer(text):
        candidates.append(Finding(REFERENCE, match.group(), match.start(), match.end()))
    for match in TITLE_RE.finditer(text):
        candidates.append(Finding(PERSON, match.group(), match.start(), match.end()))
    for names in _name_patterns(known_names):
        for match in names.finditer(text):
            candidates.append(Finding(PERSON, match.group(), match.start(), match.end()))
    for match in DATETIME_RE.finditer(text):
        candidates.append(Finding(DATETIME, match.group(), match.start(), match.end()))

    chosen: list[Finding] = []
    for finding in sorted(candidates, key=lambda f: (f.start, -(f.end - f.start))):
        if chosen and finding.start < chosen[-1].end:
            continue
        chosen.append(finding)
    return chosen


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
            date_part, _, clock_part = raw.replace(",", " ").partition(" ")
            day, month, year = (int(p) for p in re.split(r"[./]", date_part))
            year = year + 2000 if year < 100 else year
            clock = time.fromisoformat(clock_part.strip()) if clock_part.strip() else time(0, 0)
            moment = datetime(year, month, day, clock.hour, clock.minute, clock.second, tzinfo=tz)
        else:
            match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s?(?:([AaPp])\.?[Mm]\.?)?", raw)
            if match is None:
                return None
            hour, minute = int(match.group(1)), int(match.group(2))
            if match.group(4):
                hour = hour % 12 + (12 if match.group(4).lower() == "p" else 0)
            moment = datetime.combine(local_anchor.date(), time(hour, minute, int(match.group(3) or 0)), tz)
    except ValueError:
        return None
    return moment


@dataclass
class Pseudonymiser:
    """Replaces what `detect` finds, consistently: the same original always gets the same pseudonym.

    `people` lists each person as their aliases (full name, first and last name, username, e-mail), so
    that every alias of one person becomes the same "Person A". `anchor` is the incident's start:
    absolute times become offsets from it.
    """

    people: Sequence[Sequence[str]] = ()
    anchor: datetime | None = None
    tz: tzinfo = UTC
    mapping: dict[tuple[str, str], str] = field(default_factory=dict)
    _person_of: dict[str, int] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    _aliases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for index, aliases in enumerate(self.people):
            for alias in aliases:
                if alias and len(alias.strip()) >= 3:
                    self._person_of.setdefault(alias.strip().lower(), index)
                    self._aliases.append(alias.strip())

    @property
    def known_names(self) -> list[str]:
        """Every alias of every person, as written (e-mail addresses included)."""
        return list(self._aliases)

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _person_label(self, original: str) -> str:
        index = self._person_of.get(original.strip().lower())
        key = (PERSON, f"#{index}" if index is not None else original.strip().lower())
        if key not in self.mapping:
            self.mapping[key] = f"Person {_letters(self._next(PERSON) - 1)}"
        return self.mapping[key]

    def pseudonym(self, finding: Finding) -> str:
        original = finding.text
        if finding.kind == PERSON and "@" in original:
            return f"{self._person_label(original).lower().replace(' ', '-')}@example.invalid"
        if finding.kind == PERSON and TITLE_RE.fullmatch(original):
            title, name = original.split(None, 1)
            return f"{title} {self._person_label(name)}"
        if finding.kind == PERSON:
            return self._person_label(original)
        if finding.kind == EMAIL:
            if original.lower() in self._person_of:
                person = self._person_label(original)
                return f"{person.lower().replace(' ', '-')}@example.invalid"
            key = (EMAIL, original.lower())
            if key not in self.mapping:
                self.mapping[key] = f"mailbox-{self._next(EMAIL)}@example.invalid"
            return self.mapping[key]
        if finding.kind == DATETIME:
            if self.anchor is None:
                return "[time]"
            moment = _parse_moment(original, anchor=self.anchor, tz=self.tz)
            if moment is None:
                return "[time]"
            return format_offset(round((moment - self.anchor).total_seconds() / 60))
        key = (finding.kind, original.lower())
        if key not in self.mapping:
            counter = finding.kind if finding.kind != IP else ("ip6" if ":" in original else "ip4")
            n = self._next(counter)
            self.mapping[key] = {
                HOST: f"host-{n}.example.invalid",
                IP: f"192.0.2.{n}" if ":" not in original else f"2001:db8:ffff::{n:x}",
                REFERENCE: f"REF-{_letters(n - 1)}",
            }[finding.kind]
        return self.mapping[key]

    def __call__(self, text: str) -> str:
        findings = detect(text, known_names=self._aliases)
        # Pseudonyms are handed out in reading order; the text is rebuilt from the end so offsets hold.
        replacements = [(finding, self.pseudonym(finding)) for finding in findings]
        out = text
        for finding, pseudonym in reversed(replacements):
            out = out[: finding.start] + pseudonym + out[finding.end :]
        return out
