"""Precision and recall of the pseudonymisation detectors on the annotated corpus beside this file.

Run from the repository root: `python -m tests.interviews.anon_corpus.measure`; it reports the
corpus the detectors were tuned on and a held-out set they never were (add `-v` for every miss
and every false alarm). Each text goes through the path a drafted case takes: one `Pseudonymiser` per
incident that knows the incident's participants, learns from all its texts first, then replaces.

- A planted identifier is *found* when findings cover every letter and digit of it: replaced (certain)
  or flagged for the reviewer (uncertain). Recall = found planted identifiers / planted identifiers.
- Precision = findings that overlap a planted identifier / findings. Times of day and dates inside the
  incident's own timeline are turned into offsets, not reported as identifiers: they are left out of both.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from interviews import pseudonymise

CORPUS = Path(__file__).with_name("corpus.yaml")
# Written after the detectors were tuned on CORPUS, and never tuned on: the honest figures.
HELD_OUT = Path(__file__).with_name("heldout.yaml")
# Written last and run once, after every change to the detectors: reported as it came out.
BLIND = Path(__file__).with_name("blind.yaml")
MARK_RE = re.compile(r"\{\{(\w+):(.+?)\}\}")


@dataclass
class Planted:
    kind: str
    text: str
    start: int
    end: int


@dataclass
class Text:
    incident: str
    lang: str
    text: str
    planted: list[Planted]


@dataclass
class Incident:
    id: str
    lang: str
    anchor: datetime
    participants: list[str]
    texts: list[Text] = field(default_factory=list)


def _unmark(marked: str) -> tuple[str, list[Planted]]:
    out, planted, last = [], [], 0
    length = 0
    for match in MARK_RE.finditer(marked):
        plain = marked[last : match.start()]
        out.append(plain)
        length += len(plain)
        value = match.group(2)
        planted.append(Planted(match.group(1), value, length, length + len(value)))
        out.append(value)
        length += len(value)
        last = match.end()
    out.append(marked[last:])
    return "".join(out), planted


def load(path: Path = CORPUS) -> list[Incident]:
    incidents = []
    for item in yaml.safe_load(path.read_text(encoding="utf-8")):
        anchor = item["anchor"]
        anchor = anchor if isinstance(anchor, datetime) else datetime.fromisoformat(str(anchor))
        incident = Incident(item["id"], item["lang"], anchor, list(item.get("participants", [])))
        for marked in item["texts"]:
            text, planted = _unmark(marked)
            incident.texts.append(Text(item["id"], item["lang"], text, planted))
        incidents.append(incident)
    return incidents


def people_of(participants: list[str]) -> list[list[str]]:
    """Aliases as the desk hands them over for a user: full name, first name, last name."""
    return [[name, *name.split()] for name in participants]


@dataclass
class Result:
    text: Text
    findings: list[pseudonymise.Finding]
    output: str

    def counted(self) -> list[pseudonymise.Finding]:
        return [
            f
            for f in self.findings
            if f.kind != pseudonymise.DATETIME or any(_overlaps(f, p) for p in self.text.planted)
        ]

    def missed(self) -> list[Planted]:
        """Planted identifiers with a letter or digit that no finding covers ("Leyla" of "Leyla Arslan"
        counts as a miss even where "Arslan" is replaced)."""
        return [p for p in self.text.planted if not self._covered(p)]

    def _covered(self, planted: Planted) -> bool:
        return all(
            any(f.start <= i < f.end for f in self.findings)
            for i in range(planted.start, planted.end)
            if self.text.text[i].isalnum()
        )

    def false_alarms(self) -> list[pseudonymise.Finding]:
        return [f for f in self.counted() if not any(_overlaps(f, p) for p in self.text.planted)]


def _overlaps(finding: pseudonymise.Finding, planted: Planted) -> bool:
    return finding.start < planted.end and planted.start < finding.end


def run(incidents: list[Incident] | None = None) -> list[Result]:
    results = []
    for incident in incidents if incidents is not None else load():
        pseudo = pseudonymise.Pseudonymiser(
            people=people_of(incident.participants), anchor=incident.anchor, tz=incident.anchor.tzinfo or UTC
        )
        pseudo.learn(t.text for t in incident.texts)
        for text in incident.texts:
            output, findings = pseudo.replace_all(text.text)
            results.append(Result(text, findings, output))
    return results


def scores(results: list[Result]) -> dict[str, float | int]:
    planted = sum(len(r.text.planted) for r in results)
    found = planted - sum(len(r.missed()) for r in results)
    counted = sum(len(r.counted()) for r in results)
    true = counted - sum(len(r.false_alarms()) for r in results)
    return {
        "texts": len(results),
        "planted": planted,
        "found": found,
        "findings": counted,
        "true_findings": true,
        "recall": found / planted if planted else 1.0,
        "precision": true / counted if counted else 1.0,
    }


def main(argv: list[str]) -> int:
    for path in (CORPUS, HELD_OUT, BLIND):
        print(f"{path.name}:")
        report(run(load(path)), verbose="-v" in argv)
    return 0


def report(results: list[Result], *, verbose: bool) -> None:
    for lang in ("en", "de", None):
        subset = [r for r in results if lang is None or r.text.lang == lang]
        s = scores(subset)
        label = lang or "all"
        print(
            f"{label:>3}: {len(subset):3d} texts, {s['planted']} planted, recall {s['recall']:.3f} "
            f"({s['found']}/{s['planted']}), precision {s['precision']:.3f} "
            f"({s['true_findings']}/{s['findings']})"
        )
    if verbose:
        for r in results:
            for p in r.missed():
                print(f"MISSED  {r.text.incident}: {p.kind} {p.text!r}")
            for f in r.false_alarms():
                print(f"FALSE   {r.text.incident}: {f.kind} {f.text!r} certain={f.certain}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
