"""Demo data for interviews: two complete cases (an IT outage, a security incident) as case documents,
and the script of a finished session with two raters. Loaded by `python manage.py seed_interviews`."""

from __future__ import annotations

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

CASES = (IT_OUTAGE, SECURITY_INCIDENT)

# The finished demo session: what the candidate asked, what was revealed, what they stated, how two raters rated.
SESSION_CASE = IT_OUTAGE["slug"]
MEDICAL_RETENTION_DAYS = 180
SESSION_CANDIDATE = {"name": "Sam Sample", "email": "sam.sample@example.org"}
SESSION_SCRIPT: list[tuple[str, str, list[tuple[str, str]]]] = [
    # (question, answer: "reveal" / "not_available", facts revealed with their level)
    ("How many people are affected?", "reveal", [("scope", "full")]),
    ("Were the laptops patched this weekend?", "reveal", [("windows-updates", "full")]),
    ("What does the login service log?", "reveal", [("sso-errors", "full")]),
    ("And the directory server?", "reveal", [("pool-exhausted", "full")]),
    ("Did anyone change anything recently?", "reveal", [("friday-change", "partial")]),
    ("What exactly changed on Friday?", "reveal", [("friday-change", "full")]),
    ("Is there a backup directory?", "not_available", []),
    ("Did it work over the weekend?", "reveal", [("weekend-quiet", "full")]),
]
SESSION_PROBLEMS: list[tuple[str, list[str], str, str | None]] = [
    # (statement, facts cited, verdict, expected problem)
    (
        "The pool size change on Friday is too small for Monday's load.",
        ["pool-exhausted", "friday-change"],
        "matched",
        "pool-size",
    ),
    ("Everyone logs in at nine, so the load peaks.", ["scope", "weekend-quiet"], "matched", "peak"),
    ("The Windows updates may have broken the login.", ["windows-updates"], "invalid", None),
]
SESSION_SOLUTIONS: list[tuple[str, str, str, str | None]] = [
    # (action, reason, verdict, model solution or harmful action)
    ("Roll back the Friday change.", "It is the most likely cause and quick to undo.", "matched", "rollback"),
    ("Post a notice on the status page.", "Stops the phones ringing.", "matched", "tell-staff"),
    ("Add an alert on the pool.", "So we see it before users do.", "matched", "monitor-pool"),
]
# Levels by dimension: (lead, rater). Solution quality differs by two: the panel discussed it.
SESSION_LEVELS: dict[str, tuple[int, int]] = {
    "information_gathering": (4, 4),
    "situational_reasoning": (4, 3),
    "problem_extraction": (3, 3),
    "solution_quality": (4, 2),
    "judgement_under_uncertainty": (3, 3),
    "communication": (4, 4),
}
SESSION_CONSENSUS: dict[str, tuple[int, str]] = {
    "information_gathering": (4, ""),
    "situational_reasoning": (4, ""),
    "problem_extraction": (3, ""),
    "solution_quality": (3, "Good first action; no prevention of unreviewed changes. Agreed on 3."),
    "judgement_under_uncertainty": (3, ""),
    "communication": (4, ""),
}
