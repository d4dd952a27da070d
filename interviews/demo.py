"""Demo data for interviews: three complete cases (an IT outage, a security incident, a medical near miss)
as case documents, and the scripts of finished sessions with two raters, timed in minutes. Loaded by `python manage.py seed_interviews`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IT_OUTAGE: dict[str, Any] = {
    "slug": "monday-login-storm",
    "title": "Nobody can log in on Monday morning",
    "domain": "it_service",
    "tags": ["identity", "directory", "change"],
    "difficulty": 2,
    "target_role": "Service desk agent, tier 1",
    "presentation": (
        "It is Monday, a few minutes after nine. The service desk phones are ringing: staff cannot log in to "
        "e-mail, the intranet or the VPN. Some people got in after several tries. You are the agent on duty."
    ),
    "brief": (
        "Find out what is going on by asking the interviewer questions. Then state the problems you see, each "
        "with the facts behind it, and propose what to do, in order, with your reasons."
    ),
    "time_boxes": {"present": 180, "gather": 900, "extract": 420, "solve": 600, "evaluate": 600},
    "actual_outcome": (
        "A configuration change on Friday evening had cut the directory's connection pool from 200 to 20. "
        "Nobody noticed over the weekend; the Monday peak exhausted the pool. The change was rolled back at "
        "T+55 min, logins recovered within minutes. Since then changes to identity services get a peer review "
        "and a load test, and the pool is monitored."
    ),
    "rubric": "incident-process",
    "facts": [
        {
            "key": "scope",
            "title": "Who is affected",
            "text": "About 800 of 1,100 staff cannot log in; the rest got in after two or three tries.",
            "partial_text": "Many people, across all departments.",
            "category": "impact",
            "importance": "key",
            "triggers": ["How many users are affected?", "Who is affected?"],
            "keywords": ["how many", "users", "affected", "everyone", "departments"],
        },
        {
            "key": "sso-errors",
            "title": "Single sign-on errors",
            "text": "The single sign-on service logs 'directory connection timeout' for most login attempts.",
            "partial_text": "The login service shows errors.",
            "category": "monitoring",
            "importance": "key",
            "triggers": ["What do the logs say?", "Are there errors in the login service?"],
            "keywords": ["log", "logs", "error", "sso", "single sign-on"],
        },
        {
            "key": "pool-exhausted",
            "title": "Directory connection pool full",
            "text": "The directory's connection pool is at 20 of 20 connections, all busy.",
            "category": "monitoring",
            "importance": "key",
            "triggers": ["What does the directory server show?", "Is the directory overloaded?"],
            "keywords": ["directory", "ldap", "pool", "connections", "load"],
            "requires": ["sso-errors"],
        },
        {
            "key": "friday-change",
            "title": "Configuration change on Friday",
            "text": (
                "On Friday at 18:30 a configuration change to the directory was deployed: 'tidy up connection "
                "settings'. It set the pool size from 200 to 20."
            ),
            "partial_text": "There was a change to the directory on Friday.",
            "category": "change",
            "importance": "key",
            "triggers": ["Was anything changed recently?", "Were there any deployments?"],
            "keywords": ["change", "changed", "deploy", "deployment", "friday", "update"],
        },
        {
            "key": "no-review",
            "title": "Change without review",
            "text": "The change was marked 'standard' and went out without a peer review or a load test.",
            "category": "people",
            "importance": "supporting",
            "triggers": ["Who approved the change?", "Was the change reviewed or tested?"],
            "keywords": ["review", "approved", "tested", "approval"],
            "requires": ["friday-change"],
        },
        {
            "key": "weekend-quiet",
            "title": "Quiet weekend",
            "text": "Over the weekend about 30 people logged in, all successfully.",
            "category": "timeline",
            "importance": "supporting",
            "triggers": ["When did it start?", "Did it work over the weekend?"],
            "keywords": ["weekend", "start", "started", "since when"],
        },
        {
            "key": "windows-updates",
            "title": "Windows updates",
            "text": "Laptops installed the monthly Windows updates on Saturday night, as every month.",
            "category": "change",
            "importance": "red_herring",
            "triggers": ["Were the laptops updated?"],
            "keywords": ["windows", "patch", "laptops", "updates"],
        },
        {
            "key": "printer",
            "title": "Printer jam",
            "text": "The printer on the third floor has a paper jam.",
            "category": "timeline",
            "importance": "noise",
            "keywords": ["printer"],
        },
    ],
    "problems": [
        {
            "key": "peak",
            "statement": "The Monday morning login peak is the trigger: it needs far more directory connections.",
            "kind": "trigger",
            "weight": 1,
            "required_facts": ["scope", "weekend-quiet"],
            "paraphrases": ["Monday morning load", "everyone logs in at nine"],
        },
        {
            "key": "pool-size",
            "statement": "Friday's change cut the directory connection pool to 20, too small for the load.",
            "kind": "root_cause",
            "weight": 3,
            "required_facts": ["pool-exhausted", "friday-change"],
            "paraphrases": ["connection pool too small", "the Friday change broke the directory"],
        },
        {
            "key": "unreviewed-change",
            "statement": "Changes to identity services go out without review or load test.",
            "kind": "process_gap",
            "weight": 2,
            "required_facts": ["no-review"],
            "paraphrases": ["no change review", "no testing of changes"],
        },
    ],
    "solutions": [
        {
            "key": "rollback",
            "action": "Roll back Friday's change (pool back to 200).",
            "type": "mitigate",
            "rank": 1,
            "weight": 3,
            "addresses": ["pool-size"],
        },
        {
            "key": "tell-staff",
            "action": "Tell staff what is happening and when to try again (status page, intranet banner).",
            "type": "communicate",
            "rank": 2,
            "weight": 1,
            "addresses": ["peak"],
        },
        {
            "key": "monitor-pool",
            "action": "Alert on connection pool saturation.",
            "type": "fix",
            "rank": 3,
            "weight": 1,
            "addresses": ["pool-size"],
        },
        {
            "key": "review-changes",
            "action": "Require peer review and a load test for changes to identity services.",
            "type": "prevent",
            "rank": 4,
            "weight": 2,
            "addresses": ["unreviewed-change"],
        },
    ],
    "harmful_actions": [
        {
            "key": "restart-all",
            "action": "Restart every directory server at once.",
            "why": "Drops every session that still works and brings the whole company down.",
            "penalty": 2,
        },
        {
            "key": "disable-mfa",
            "action": "Turn off multi-factor authentication to make logins faster.",
            "why": "Does not touch the cause and opens the door to attackers.",
            "penalty": 3,
        },
    ],
}

SECURITY_INCIDENT: dict[str, Any] = {
    "slug": "invoice-forwarding-rule",
    "title": "Invoices forwarded to an unknown address",
    "domain": "security",
    "tags": ["phishing", "business e-mail compromise", "mfa"],
    "difficulty": 3,
    "target_role": "Security analyst",
    "presentation": (
        "A clerk in accounts payable calls: a supplier says it never received two invoices that she is sure "
        "she answered. In her mailbox she found a rule she did not create. It forwards every message with "
        "'invoice' in it to an address she does not know."
    ),
    "brief": (
        "Ask for the facts you need. State what went wrong and why, with the facts behind each problem, and "
        "propose your actions in order, with reasons. Say what you would do first in the next hour."
    ),
    "time_boxes": {"present": 180, "gather": 900, "extract": 420, "solve": 600, "evaluate": 600},
    "actual_outcome": (
        "The clerk had approved a burst of MFA prompts after entering her password on a fake login page. The "
        "attacker set the forwarding rule and, posing as the supplier, sent new bank details. The payment of "
        "48,000 EUR was stopped an hour before the run. The sessions were revoked, number matching was turned on "
        "and the data-protection officer assessed the breach (no notification needed)."
    ),
    "rubric": "incident-process",
    "facts": [
        {
            "key": "rule",
            "title": "Forwarding rule",
            "text": "The rule was created on Wednesday at 22:14, from a sign-in the clerk did not make.",
            "partial_text": "The rule is a few days old.",
            "category": "timeline",
            "importance": "key",
            "triggers": ["When was the rule created?", "Who created the rule?"],
            "keywords": ["rule", "created", "when", "forwarding"],
        },
        {
            "key": "foreign-signin",
            "title": "Sign-in from abroad",
            "text": "The sign-in logs show a successful login from another country at 22:09 on Wednesday.",
            "category": "monitoring",
            "importance": "key",
            "triggers": ["What do the sign-in logs show?", "Were there unusual logins?"],
            "keywords": ["sign-in", "login", "logins", "logs", "country", "location"],
        },
        {
            "key": "mfa-fatigue",
            "title": "MFA prompts approved",
            "text": "Between 22:05 and 22:09 the clerk got eleven MFA prompts on her phone and approved the last one.",
            "partial_text": "Her phone showed some prompts that evening.",
            "category": "people",
            "importance": "key",
            "triggers": ["Did she get MFA prompts?", "How was MFA passed?"],
            "keywords": ["mfa", "prompt", "prompts", "push", "phone", "authenticator"],
            "requires": ["foreign-signin"],
        },
        {
            "key": "phishing-mail",
            "title": "Phishing e-mail",
            "text": "On Wednesday afternoon she received a 'shared document' e-mail and entered her password on the page it opened.",
            "category": "timeline",
            "importance": "supporting",
            "triggers": ["Did she receive any suspicious e-mail?", "Did she enter her password anywhere?"],
            "keywords": ["phishing", "email", "e-mail", "link", "password", "suspicious"],
        },
        {
            "key": "bank-details",
            "title": "New bank details",
            "text": (
                "On Thursday a message 'from the supplier' announced new bank details. A payment of 48,000 EUR "
                "to the new account is scheduled for today's run at 16:00."
            ),
            "partial_text": "There is a payment to this supplier coming up.",
            "category": "impact",
            "importance": "key",
            "triggers": ["Are there payments pending?", "Did the supplier's details change?"],
            "keywords": ["payment", "bank", "account", "money", "transfer", "pending"],
        },
        {
            "key": "no-number-matching",
            "title": "Plain push approval",
            "text": "MFA uses plain push approval: no number matching, no location shown, no limit on prompts.",
            "category": "dependency",
            "importance": "supporting",
            "triggers": ["How is MFA configured?"],
            "keywords": ["configured", "number matching", "policy", "conditional access"],
            "requires": ["mfa-fatigue"],
        },
        {
            "key": "av-alert",
            "title": "Antivirus alert elsewhere",
            "text": "Antivirus quarantined a macro document on a laptop in marketing on Monday.",
            "category": "monitoring",
            "importance": "red_herring",
            "triggers": ["Were there antivirus alerts?"],
            "keywords": ["antivirus", "malware", "virus", "alert"],
        },
        {
            "key": "office-move",
            "title": "Office move",
            "text": "Accounts payable moved to the second floor last month.",
            "category": "people",
            "importance": "noise",
            "keywords": ["office", "moved"],
        },
    ],
    "problems": [
        {
            "key": "account-compromise",
            "statement": "The clerk's account was taken over: password phished, MFA passed by prompt fatigue.",
            "kind": "root_cause",
            "weight": 3,
            "required_facts": ["foreign-signin", "mfa-fatigue"],
            "paraphrases": ["account compromised", "MFA fatigue attack", "her credentials were stolen"],
        },
        {
            "key": "payment-fraud",
            "statement": "A fraudulent payment of 48,000 EUR is about to go out to the attacker's account.",
            "kind": "trigger",
            "weight": 3,
            "required_facts": ["bank-details"],
            "paraphrases": ["invoice fraud", "the payment goes to the attacker"],
        },
        {
            "key": "weak-mfa",
            "statement": "MFA allows unlimited plain push prompts (no number matching).",
            "kind": "contributing_factor",
            "weight": 2,
            "required_facts": ["no-number-matching"],
            "paraphrases": ["weak MFA configuration"],
        },
        {
            "key": "bank-change-check",
            "statement": "Finance changes a supplier's bank details on an e-mail without calling back.",
            "kind": "process_gap",
            "weight": 1,
            "required_facts": ["bank-details"],
            "paraphrases": ["no call-back verification"],
        },
    ],
    "solutions": [
        {
            "key": "stop-payment",
            "action": "Stop the 48,000 EUR payment now and call the supplier on a known number.",
            "type": "mitigate",
            "rank": 1,
            "weight": 3,
            "addresses": ["payment-fraud"],
        },
        {
            "key": "contain-account",
            "action": "Revoke all sessions, reset the password, remove the rule, review other mailboxes for the same rule.",
            "type": "mitigate",
            "rank": 2,
            "weight": 3,
            "addresses": ["account-compromise"],
        },
        {
            "key": "number-matching",
            "action": "Turn on number matching and limit MFA prompts; alert on sign-ins from new countries.",
            "type": "prevent",
            "rank": 3,
            "weight": 2,
            "addresses": ["weak-mfa", "account-compromise"],
        },
        {
            "key": "dpo",
            "action": "Involve the data-protection officer to assess the breach and the reporting deadline.",
            "type": "communicate",
            "rank": 4,
            "weight": 1,
            "addresses": ["account-compromise"],
        },
        {
            "key": "callback-rule",
            "action": "Verify every change of bank details by calling back on a number on file.",
            "type": "prevent",
            "rank": 5,
            "weight": 1,
            "addresses": ["bank-change-check"],
        },
    ],
    "harmful_actions": [
        {
            "key": "wipe-mailbox",
            "action": "Delete the mailbox and its rules to clean up.",
            "why": "Destroys the evidence needed to see what the attacker read and sent.",
            "penalty": 2,
        },
        {
            "key": "reply-attacker",
            "action": "Reply to the forwarding address to ask who they are.",
            "why": "Warns the attacker, who then moves faster.",
            "penalty": 1,
        },
    ],
}

MEDICAL_NEAR_MISS: dict[str, Any] = {
    "slug": "bedside-double-dose",
    "title": "A double dose of morphine stopped at the bedside",
    "domain": "medical",
    "tags": ["medication", "paediatrics", "near miss", "weight-based dosing"],
    "difficulty": 3,
    "target_role": "Patient-safety lead, nurse in charge",
    "presentation": (
        "Children's surgical ward, ten past two at night. A nurse is about to give intravenous morphine to a "
        "four-year-old after an operation. At the bedside double check the second nurse stops her: the syringe "
        "holds about twice the dose she would expect for a child that size. Nobody was harmed. You are the "
        "patient-safety lead on call."
    ),
    "brief": (
        "Find out how a double dose got as far as the bedside by asking the interviewer. State the problems, "
        "each with the facts behind it, and propose what to do, in order: for this child tonight first, then "
        "for the ward and the hospital."
    ),
    "time_boxes": {"present": 180, "gather": 900, "extract": 420, "solve": 600, "evaluate": 600},
    "actual_outcome": (
        "The double check stopped the dose. The child was weighed (18.2 kg), the record corrected and morphine "
        "re-prescribed at 1.8 mg; a paracetamol dose given the evening before, also calculated on 38 kg, was "
        "found and the child monitored overnight without harm. The review found a typing error at admission, no "
        "age-for-weight check in either system and no pharmacy review of night prescriptions. The hospital added "
        "a plausibility alert (a weight outside the usual range for the age needs a second confirmation) and an "
        "on-call pharmacist check for children's opioids; the two nurses were thanked in the safety bulletin."
    ),
    "rubric": "incident-process",
    "facts": [
        {
            "key": "prescribed-dose",
            "title": "The prescription",
            "text": (
                "At 22:40 the junior doctor prescribed morphine 3.8 mg IV every four hours as needed: 0.1 mg per "
                "kg, calculated from the weight in the electronic record."
            ),
            "partial_text": "Morphine was prescribed on the ward in the evening, weight-based.",
            "category": "timeline",
            "importance": "key",
            "triggers": ["What was prescribed?", "How was the dose calculated?"],
            "keywords": ["prescription", "prescribed", "dose", "calculated", "mg", "doctor"],
        },
        {
            "key": "weight-mismatch",
            "title": "Two different weights",
            "text": "The electronic record gives the child's weight as 38 kg; the anaesthetic chart and the ward scales say 18.2 kg.",
            "partial_text": "The weights in the documents do not all agree.",
            "category": "monitoring",
            "importance": "key",
            "triggers": ["What does the child weigh?", "Which weight was used?"],
            "keywords": ["weight", "weigh", "kg", "kilogram", "heavy", "scales"],
        },
        {
            "key": "weight-entry",
            "title": "How the wrong weight got in",
            "text": (
                "The weight was typed in at admission at 18:05 by a bank nurse new to the ward: 38 instead of 18. "
                "The admission screen accepts any weight without asking for a confirmation."
            ),
            "category": "people",
            "importance": "key",
            "triggers": ["Who entered the weight?", "When was the weight recorded?"],
            "keywords": ["entered", "typed", "admission", "recorded", "who"],
            "requires": ["weight-mismatch"],
        },
        {
            "key": "no-range-check",
            "title": "No plausibility check",
            "text": "Neither the admission screen nor the prescribing system warns when a weight is implausible for the age: 38 kg at four raised no alert.",
            "category": "dependency",
            "importance": "supporting",
            "triggers": ["Did the system warn?", "Is there an alert for unusual weights?"],
            "keywords": ["alert", "warning", "warn", "system", "check", "plausible"],
            "requires": ["weight-mismatch"],
        },
        {
            "key": "other-doses",
            "title": "Other weight-based doses",
            "text": "A dose of IV paracetamol at 20:00 was also calculated on 38 kg and was given.",
            "partial_text": "The child had other medicines that evening.",
            "category": "impact",
            "importance": "key",
            "triggers": ["Did the child get other medicines?", "Were other doses given?"],
            "keywords": ["other", "paracetamol", "given", "medicines", "drugs", "already"],
        },
        {
            "key": "pharmacy-hours",
            "title": "No pharmacy review at night",
            "text": "Pharmacists review new prescriptions from 08:00; the night's prescriptions had not been reviewed.",
            "category": "dependency",
            "importance": "supporting",
            "triggers": ["Did pharmacy check the prescription?"],
            "keywords": ["pharmacy", "pharmacist", "review", "reviewed"],
        },
        {
            "key": "double-check",
            "title": "The bedside double check",
            "text": (
                "Ward policy: two nurses check every IV opioid at the bedside against the prescription and the "
                "wristband. The second nurse compared the dose with the child's size, not only with the prescription."
            ),
            "category": "people",
            "importance": "supporting",
            "triggers": ["How was it caught?", "What is the double-check procedure?"],
            "keywords": ["double check", "second nurse", "caught", "procedure", "policy"],
        },
        {
            "key": "pump-service",
            "title": "Infusion pump serviced",
            "text": "The infusion pump in bay 3 was serviced last week and passed all its checks.",
            "category": "dependency",
            "importance": "red_herring",
            "triggers": ["Was the pump working?"],
            "keywords": ["pump", "device", "equipment", "infusion"],
        },
        {
            "key": "parents-asleep",
            "title": "Parents in the room",
            "text": "Both parents were asleep in the room.",
            "category": "people",
            "importance": "noise",
            "keywords": ["parents", "family", "mother", "father"],
        },
    ],
    "problems": [
        {
            "key": "wrong-weight",
            "statement": "A wrong weight in the record (38 instead of 18 kg) made every weight-based dose about twice too high.",
            "kind": "root_cause",
            "weight": 3,
            "required_facts": ["prescribed-dose", "weight-mismatch"],
            "paraphrases": ["the weight was wrong", "dose calculated on the wrong weight"],
        },
        {
            "key": "paracetamol-given",
            "statement": "An earlier dose calculated on the same wrong weight was already given: the child may need checking.",
            "kind": "trigger",
            "weight": 2,
            "required_facts": ["other-doses"],
            "paraphrases": ["other doses were also wrong", "the paracetamol was overdosed"],
        },
        {
            "key": "no-plausibility-check",
            "statement": "No system checks a child's weight against the age, so one typing error passes every step.",
            "kind": "contributing_factor",
            "weight": 2,
            "required_facts": ["weight-entry", "no-range-check"],
            "paraphrases": ["no alert for an implausible weight", "the system accepts any weight"],
        },
        {
            "key": "night-review-gap",
            "statement": "Night prescriptions are not reviewed by pharmacy, leaving the bedside check as the last barrier.",
            "kind": "process_gap",
            "weight": 1,
            "required_facts": ["pharmacy-hours"],
            "paraphrases": ["no pharmacist at night", "no pharmacy check overnight"],
        },
    ],
    "solutions": [
        {
            "key": "hold-and-weigh",
            "action": "Hold the dose, weigh the child, correct the record and have the morphine re-prescribed on the right weight.",
            "type": "mitigate",
            "rank": 1,
            "weight": 3,
            "addresses": ["wrong-weight"],
        },
        {
            "key": "check-child",
            "action": "Find every dose given on the wrong weight and have the doctor assess and monitor the child.",
            "type": "mitigate",
            "rank": 2,
            "weight": 2,
            "addresses": ["paracetamol-given"],
        },
        {
            "key": "tell-parents",
            "action": "Tell the parents openly what nearly happened and what is being done.",
            "type": "communicate",
            "rank": 3,
            "weight": 1,
            "addresses": ["paracetamol-given", "wrong-weight"],
        },
        {
            "key": "plausibility-alert",
            "action": "Add an age-for-weight plausibility alert at admission and prescribing, with a second confirmation.",
            "type": "prevent",
            "rank": 4,
            "weight": 2,
            "addresses": ["no-plausibility-check"],
        },
        {
            "key": "night-pharmacy",
            "action": "Have children's opioid prescriptions checked at night by the on-call pharmacist or a second prescriber.",
            "type": "prevent",
            "rank": 5,
            "weight": 1,
            "addresses": ["night-review-gap"],
        },
    ],
    "harmful_actions": [
        {
            "key": "give-half",
            "action": "Give about half of the syringe now and sort out the prescription in the morning.",
            "why": "A guessed dose bypasses the prescription and the very checks that just worked.",
            "penalty": 3,
        },
        {
            "key": "suspend-nurse",
            "action": "Suspend the nurse who typed the weight.",
            "why": "Blames one person for a system without checks, and teaches the ward not to report.",
            "penalty": 2,
        },
    ],
}

CASES = (IT_OUTAGE, SECURITY_INCIDENT, MEDICAL_NEAR_MISS)

MEDICAL_RETENTION_DAYS = 180


@dataclass(frozen=True)
class DemoSession:
    """A finished session as the seed replays it on a simulated clock. Times are minutes: questions and
    notes from the start of phase 2, problems from phase 3, solutions from phase 4. `phases` holds how
    long the lead let each phase run (a phase longer than its time box is recorded as an overrun)."""

    case: str
    candidate: dict[str, str]
    days_ago: int
    script: list[tuple[float, str, str, list[tuple[str, str]]]]
    notes: list[tuple[float, str, str, str | None]]
    problems: list[tuple[float, str, list[str], str, str | None]]
    solutions: list[tuple[float, str, str, str, str | None]]
    levels: dict[str, tuple[int, int]]
    consensus: dict[str, tuple[int, str]]
    summary: str
    recommendation: str = "yes"
    reference: bool = False
    organisation: str | None = None
    phases: dict[str, float] = field(
        default_factory=lambda: {
            "present": 2.5,
            "gather": 14,
            "extract": 7,
            "solve": 11,
            "evaluate": 8,
            "rating": 12,
        }
    )


# The finished IT session: what the candidate asked, what was revealed, what they stated, how two raters rated.
SESSION = DemoSession(
    case=IT_OUTAGE["slug"],
    candidate={"name": "Sam Sample", "email": "sam.sample@example.org"},
    days_ago=3,
    script=[
        # (minute of phase 2, question, answer: "reveal" / "not_available", facts revealed with their level)
        (0.5, "How many people are affected?", "reveal", [("scope", "full")]),
        (2, "Were the laptops patched this weekend?", "reveal", [("windows-updates", "full")]),
        (3.5, "What does the login service log?", "reveal", [("sso-errors", "full")]),
        (5, "And the directory server?", "reveal", [("pool-exhausted", "full")]),
        (7, "Did anyone change anything recently?", "reveal", [("friday-change", "partial")]),
        (8, "What exactly changed on Friday?", "reveal", [("friday-change", "full")]),
        (10, "Is there a backup directory?", "not_available", []),
        (12, "Did it work over the weekend?", "reveal", [("weekend-quiet", "full")]),
    ],
    notes=[
        (2.5, "chasing_red_herring", "Asked about Windows updates early.", None),
        (9, "", "Went to the logs, then the directory.", "information_gathering"),
    ],
    problems=[
        # (minute of phase 3, statement, facts cited, verdict, expected problem)
        (
            1.5,
            "The pool size change on Friday is too small for Monday's load.",
            ["pool-exhausted", "friday-change"],
            "matched",
            "pool-size",
        ),
        (3.5, "Everyone logs in at nine, so the load peaks.", ["scope", "weekend-quiet"], "matched", "peak"),
        (5.5, "The Windows updates may have broken the login.", ["windows-updates"], "invalid", None),
    ],
    solutions=[
        # (minute of phase 4, action, reason, verdict, model solution or harmful action)
        (
            2,
            "Roll back the Friday change.",
            "It is the most likely cause and quick to undo.",
            "matched",
            "rollback",
        ),
        (5, "Post a notice on the status page.", "Stops the phones ringing.", "matched", "tell-staff"),
        (8, "Add an alert on the pool.", "So we see it before users do.", "matched", "monitor-pool"),
    ],
    # Levels by dimension: (lead, rater). Solution quality differs by two: the panel discussed it.
    levels={
        "information_gathering": (4, 4),
        "situational_reasoning": (4, 3),
        "problem_extraction": (3, 3),
        "solution_quality": (4, 2),
        "judgement_under_uncertainty": (3, 3),
        "communication": (4, 4),
    },
    consensus={
        "information_gathering": (4, ""),
        "situational_reasoning": (4, ""),
        "problem_extraction": (3, ""),
        "solution_quality": (3, "Good first action; no prevention of unreviewed changes. Agreed on 3."),
        "judgement_under_uncertainty": (3, ""),
        "communication": (4, ""),
    },
    summary="Found the cause quickly; prevention was thin.",
)

# The medical session is a reference for calibration: the reviewer (not on its panel) can rate it.
MEDICAL_SESSION = DemoSession(
    case=MEDICAL_NEAR_MISS["slug"],
    candidate={"name": "Noor Nightingale", "email": "noor.nightingale@example.org"},
    organisation="medical",
    days_ago=1,
    reference=True,
    script=[
        (
            0.5,
            "What was prescribed, and how was the dose worked out?",
            "reveal",
            [("prescribed-dose", "full")],
        ),
        (2, "What does the child actually weigh?", "reveal", [("weight-mismatch", "full")]),
        (4, "Was the pump working properly?", "reveal", [("pump-service", "full")]),
        (5.5, "How did 38 kg get into the record?", "reveal", [("weight-entry", "full")]),
        (7.5, "Did the system not warn anyone?", "reveal", [("no-range-check", "full")]),
        (10, "Has the child had anything else tonight?", "reveal", [("other-doses", "partial")]),
        (11, "Which medicines, and on which weight?", "reveal", [("other-doses", "full")]),
        (13, "Is the surgeon aware?", "not_available", []),
    ],
    notes=[
        (4.5, "chasing_red_herring", "Spent a question on the pump.", None),
        (11.5, "good_question", "Went back for the other doses on her own.", "information_gathering"),
    ],
    problems=[
        (
            1,
            "The dose was calculated on a weight twice the real one.",
            ["prescribed-dose", "weight-mismatch"],
            "matched",
            "wrong-weight",
        ),
        (
            3,
            "The paracetamol was also overdosed: the child needs assessing.",
            ["other-doses"],
            "matched",
            "paracetamol-given",
        ),
        (
            5,
            "Nothing checks that a weight is plausible for a four-year-old.",
            ["weight-entry", "no-range-check"],
            "matched",
            "no-plausibility-check",
        ),
    ],
    solutions=[
        (
            1,
            "Hold the morphine, weigh the child and get it re-prescribed on 18 kg.",
            "The child needs pain relief, safely.",
            "matched",
            "hold-and-weigh",
        ),
        (
            3,
            "Ask the doctor to review the paracetamol dose and monitor the child.",
            "It was already given.",
            "matched",
            "check-child",
        ),
        (
            6,
            "Add a weight-for-age alert to admission and prescribing.",
            "One typo must not pass every step.",
            "matched",
            "plausibility-alert",
        ),
        (
            8.5,
            "Tell the parents in the morning what happened.",
            "They have a right to know.",
            "matched",
            "tell-parents",
        ),
    ],
    levels={
        "information_gathering": (4, 4),
        "situational_reasoning": (5, 4),
        "problem_extraction": (4, 4),
        "solution_quality": (4, 4),
        "judgement_under_uncertainty": (4, 3),
        "communication": (3, 3),
    },
    consensus={
        "information_gathering": (4, ""),
        "situational_reasoning": (4, ""),
        "problem_extraction": (4, ""),
        "solution_quality": (4, ""),
        "judgement_under_uncertainty": (4, ""),
        "communication": (3, ""),
    },
    summary="Safe first actions and a systemic view; missed the night pharmacy gap.",
    phases={"present": 3, "gather": 14.5, "extract": 7.5, "solve": 10, "evaluate": 9, "rating": 15},
)

SESSIONS = (SESSION, MEDICAL_SESSION)
SESSION_CANDIDATE = SESSION.candidate
