"""Every response the candidate can get never contains an unrevealed fact, an expected problem, a model
solution, a harmful action, the panel's notes, ratings or names, or another candidate's data.

The candidate's client holds one link (`/api/v1/interviews/candidate/<token>/`) and no account. The test
runs a whole session, and after every step of the panel it sends every request the candidate can send
(valid and invalid ones) and inspects the raw bytes of every response.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from interviews import lifecycle, services
from interviews.models import Fact, Session
from tests.interviews.helpers import (
    SECRET_FACT_TEXT,
    SECRET_OUTCOME,
    lead_of,
    new_session,
    png_bytes,
    published_version,
    raters_of,
    rubric_keys,
)

pytestmark = pytest.mark.django_db
BASE = "/api/v1/interviews"
CANDIDATE_KEYS = {
    "state", "phase", "mode", "version", "case", "clock", "pause_reason", "reveals", "answers", "problems",
    "solutions", "notepad", "outcome",
}  # fmt: skip
RATER_EVIDENCE = "RATER-EVIDENCE-never-for-the-candidate"
NOTE_TEXT = "PANEL-NOTE-never-for-the-candidate"
OTHER_PROBLEM = "OTHER-CANDIDATE-PROBLEM"
OTHER_NOTEPAD = "OTHER-CANDIDATE-NOTEPAD"


class Candidate:
    """The candidate's device: only the link, no account, no cookies from the panel."""

    def __init__(self, session: Session) -> None:
        self.client = APIClient()
        self.url = f"{BASE}/candidate/{session.candidate_token}/"
        self.responses: list[bytes] = []

    def _keep(self, response):
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.responses.append(body)
        return response

    def everything(self, reveals: list[int], problems: list[int]) -> None:
        """Every request a candidate can make, valid or not, in whatever state the session is in."""
        self._keep(self.client.get(self.url))
        self._keep(
            self.client.post(
                f"{self.url}problems/", {"statement": "My problem", "cited_reveals": reveals}, format="json"
            )
        )
        self._keep(
            self.client.post(
                f"{self.url}problems/", {"statement": "Bad cite", "cited_reveals": [10**6]}, format="json"
            )
        )
        self._keep(self.client.post(f"{self.url}problems/", {}, format="json"))
        self._keep(
            self.client.post(
                f"{self.url}solutions/",
                {"action": "My fix", "reason": "why not", "addresses": problems},
                format="json",
            )
        )
        self._keep(
            self.client.post(f"{self.url}solutions/", {"action": "x", "addresses": [10**6]}, format="json")
        )
        self._keep(self.client.put(f"{self.url}notepad/", {"text": "my notes"}, format="json"))
        self._keep(self.client.get(f"{self.url}image/"))
        self._keep(self.client.get(f"{BASE}/candidate/not-a-token/image/"))
        self._keep(self.client.get(f"{BASE}/candidate/not-a-token/"))
        # The panel's endpoints, tried with the candidate's (lack of) credentials.
        session_id = Session.objects.get(candidate_token=self.url.split("/")[-2]).pk
        for path in (
            "",
            "facts/",
            "reveals/",
            "problems/",
            "ratings/",
            "notes/",
            "log/",
            "report/",
            "suggestions/?q=log",
        ):
            response = self._keep(self.client.get(f"{BASE}/sessions/{session_id}/{path}"))
            assert response.status_code in (401, 403), path
        assert self._keep(self.client.get(f"{BASE}/cases/")).status_code in (401, 403)
        slug = Session.objects.get(pk=session_id).case_version.case.slug
        assert self._keep(self.client.get(f"{BASE}/cases/{slug}/image/")).status_code in (401, 403)

    def view(self) -> dict:
        return self.client.get(self.url).json()


def secrets_of(session: Session) -> dict[str, str]:
    """Every text the panel holds, by where it comes from."""
    version = session.case_version
    texts = {"outcome": version.actual_outcome}
    for f in version.facts.all():
        texts[f"fact {f.key} title"] = f.title
        texts[f"fact {f.key} full"] = f.text
        if f.partial_text:
            texts[f"fact {f.key} partial"] = f.partial_text
    for p in version.problems.all():
        texts[f"problem {p.key}"] = p.statement
        for i, para in enumerate(p.paraphrases):
            texts[f"problem {p.key} paraphrase {i}"] = para
    for s in version.solutions.all():
        texts[f"solution {s.key}"] = s.action
    for h in version.harmful_actions.all():
        texts[f"harmful {h.key}"] = h.action
        texts[f"harmful {h.key} why"] = h.why
    for d in version.rubric.dimensions.all():
        for level, anchor in d.anchors.items():
            texts[f"anchor {d.key} {level}"] = anchor
    for m in session.members.select_related("user"):
        texts[f"panel {m.role} {m.user.username}"] = f'"{m.user.username}"'
    texts.update(
        {
            "rater evidence": RATER_EVIDENCE,
            "panel note": NOTE_TEXT,
            "other candidate problem": OTHER_PROBLEM,
            "other candidate notepad": OTHER_NOTEPAD,
            "other candidate name": "Olivia Other",
        }
    )
    return texts


def allowed_now(session: Session) -> set[str]:
    """The secrets the candidate may see at this moment: facts as revealed, the outcome when training."""
    allowed = set()
    for r in session.reveals.select_related("fact"):
        allowed.add(f"fact {r.fact.key} {r.level}")
    session.refresh_from_db()
    if session.mode == "training" and session.state in ("evaluate", "rating", "consensus", "closed"):
        allowed.add("outcome")
    return allowed


def assert_no_leak(candidate: Candidate, session: Session) -> None:
    secrets = secrets_of(session)
    allowed = allowed_now(session)
    for body in candidate.responses:
        text = body.decode(errors="replace")  # the presentation image is bytes
        for where, secret in secrets.items():
            if secret and where not in allowed:
                assert secret not in text, f"{where} leaked: {text[:300]}"
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and "reveals" in data:
            assert set(data) == CANDIDATE_KEYS
            assert all(set(r) == {"id", "text", "level", "revealed_at"} for r in data["reveals"])
            keys = set(Fact.objects.filter(version=session.case_version).values_list("key", flat=True))
            assert not keys & set(json.dumps(data["reveals"]).split('"'))
    candidate.responses.clear()


def other_candidates_session(session: Session) -> Session:
    """Another candidate on the same case, with statements of their own."""
    other = services.create_candidate(name="Olivia Other", email="olivia@example.net", consent=True)
    lead = lead_of(session)
    theirs = services.create_session(case_version=session.case_version, candidate=other, lead=lead)
    theirs = lifecycle.start_session(theirs, actor=lead)
    theirs = lifecycle.advance_session(theirs, actor=lead)
    theirs = lifecycle.advance_session(theirs, actor=lead)
    services.add_candidate_problem(theirs, statement=OTHER_PROBLEM, by_candidate=True)
    services.update_notepad(theirs, text=OTHER_NOTEPAD)
    return theirs


@pytest.mark.parametrize("mode", ["hiring", "training"])
def test_no_response_the_candidate_can_get_leaks_anything(mode, attachment_dir):
    # The presentation image carries a hidden fact in its metadata: it must reach the candidate without it.
    session = new_session(published_version(image=png_bytes(text=SECRET_FACT_TEXT)), mode=mode)
    other_candidates_session(session)
    lead = lead_of(session)
    rater = raters_of(session)[-1]
    candidate = Candidate(session)
    reveals: list[int] = []
    problems: list[int] = []

    def step():
        candidate.everything(reveals, problems)
        view = candidate.view()
        problems[:] = [p["id"] for p in view["problems"]]
        assert_no_leak(candidate, session)

    step()  # scheduled: nothing of the case yet
    assert candidate.view()["case"]["presentation"] == ""
    assert candidate.view()["case"]["image"] == ""
    assert candidate.client.get(f"{candidate.url}image/").status_code == 404
    session = lifecycle.start_session(session, actor=lead)
    step()
    assert candidate.view()["case"]["presentation"] == session.case_version.presentation
    image = candidate.client.get(candidate.view()["case"]["image"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert SECRET_FACT_TEXT.encode() not in b"".join(image.streaming_content)
    session = lifecycle.advance_session(session, actor=lead)  # gather
    question = services.record_question(session, actor=lead, text="What do the logs say?")
    reveals.append(services.reveal_fact(session, actor=lead, fact="F1", question=question).pk)
    services.add_note(session, actor=rater, text=NOTE_TEXT, dimension="information_gathering")
    step()
    reveals.append(services.reveal_fact(session, actor=lead, fact="F2", level="partial").pk)
    step()
    free = services.record_question(session, actor=lead, text="Is it big?")
    services.answer_question(session, actor=lead, question=free, answer="free", text="Medium-sized.")
    step()
    assert candidate.view()["answers"][-1]["text"] == "Medium-sized."
    session = lifecycle.pause_session(session, actor=lead, reason="fire alarm")
    step()
    session = lifecycle.resume_session(session, actor=lead)
    reveals.append(services.reveal_fact(session, actor=lead, fact="F2", level="full").pk)
    step()
    for _ in ("extract", "solve", "evaluate"):
        session = lifecycle.advance_session(session, actor=lead)
        step()
    for problem in session.candidate_problems.all():
        services.map_problem(session, actor=rater, problem=problem, verdict="matched", expected="P1")
    step()
    session = lifecycle.advance_session(session, actor=lead)  # rating
    for key in rubric_keys():
        for member in raters_of(session):
            services.rate(session, rater=member, dimension=key, level=3, evidence=RATER_EVIDENCE)
    step()
    session = lifecycle.advance_session(session, actor=lead)  # consensus
    for key in rubric_keys():
        services.record_consensus(session, actor=lead, dimension=key, level=3)
    step()
    session = lifecycle.close_session(session, actor=lead, recommendation="yes" if mode == "hiring" else "")
    step()
    view = candidate.view()
    assert [r["text"] for r in view["reveals"]] == [
        r.text for r in session.reveals.order_by("revealed_at", "id")
    ]
    assert (view["outcome"] == SECRET_OUTCOME) is (mode == "training")


def test_the_candidate_view_shows_exactly_what_was_revealed_and_cites_by_reveal():
    session = new_session()
    lead = lead_of(session)
    session = lifecycle.start_session(session, actor=lead)
    session = lifecycle.advance_session(session, actor=lead)
    partial = services.reveal_fact(session, actor=lead, fact="F1")
    candidate = Candidate(session)
    response = candidate.client.post(
        f"{candidate.url}problems/",
        {"statement": "Logs show TLS errors", "cited_reveals": [partial.pk]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["problems"][0]["cited"] == [partial.pk]
    assert response.json()["reveals"] == [
        {
            "id": partial.pk,
            "text": partial.text,
            "level": "full",
            "revealed_at": response.json()["reveals"][0]["revealed_at"],
        }
    ]


def test_an_erased_candidates_link_stops_working():
    session = new_session()
    url = f"{BASE}/candidate/{session.candidate_token}/"
    assert APIClient().get(url).status_code == 200
    services.erase_candidate(session.candidate)
    assert APIClient().get(url).status_code == 404
