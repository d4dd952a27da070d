"""What the demo is made of: its users, teams and categories, and the hand-written incidents (one story
in every state) that `seed_demo` plays in the last days of its history (see demo.history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from incidents.models import Incident, Team

EXTERNAL_ID_PREFIX = "demo-"
EMAIL_DOMAIN = "example.org"


def demo_password(username: str) -> str:
    """The fixed demo password of a demo user (long enough for the password validators)."""
    return f"demo-{username}-2026"


# --------------------------------------------------------------------------------------------------
# Configuration: users, teams, categories
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: str
    superuser: bool = False
    permissions: tuple[str, ...] = ()


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Ada", "Admin", "admin: superuser, Django admin", superuser=True),
    DemoUser("agent", "Alex", "Agent", "agent, tier 1 (service-desk)"),
    DemoUser("specialist", "Sam", "Specialist", "specialist, tier 2 (network-ops)"),
    DemoUser("secagent", "Sofia", "Sec", "security agent (security-ops)"),
    DemoUser("nurse", "Nina", "Nurse", "nurse, patient safety (nursing-safety)"),
    DemoUser("manager", "Morgan", "Manager", "manager (service-desk, network-ops, vendor-erp)"),
    DemoUser(
        "privacy",
        "Priya",
        "Privacy",
        "privacy officer (service-desk; sees confidential reporters)",
        permissions=("incidents.view_confidential_reporter",),
    ),
    DemoUser("reporter", "Robin", "Reporter", "reporter (no team)"),
    DemoUser("reporter2", "Riley", "Reporter", "reporter (no team)"),
)


@dataclass(frozen=True)
class DemoTeam:
    slug: str
    name: str
    tier: int
    domains: tuple[str, ...]
    manager: str
    members: tuple[str, ...]


DEMO_TEAMS: tuple[DemoTeam, ...] = (
    DemoTeam(
        "service-desk",
        "Service desk",
        Team.Tier.DESK,
        ("it_service",),
        "manager",
        ("agent", "manager", "privacy"),
    ),
    DemoTeam(
        "network-ops", "Network operations", Team.Tier.SPECIALIST, ("it_service",), "manager", ("specialist",)
    ),
    DemoTeam(
        "security-ops", "Security operations", Team.Tier.SPECIALIST, ("security",), "secagent", ("secagent",)
    ),
    DemoTeam(
        "nursing-safety",
        "Nursing and patient safety",
        Team.Tier.SPECIALIST,
        ("medical",),
        "nurse",
        ("nurse",),
    ),
    # An outside vendor: incidents are escalated to it and held while it works; no demo user works for it.
    DemoTeam("vendor-erp", "ERP vendor support", Team.Tier.EXPERT, ("it_service",), "manager", ()),
)

# domain -> (path, name, default team); parents come before their children.
DEMO_CATEGORIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "it_service": (
        ("network", "Network", "network-ops"),
        ("network/vpn", "VPN", "network-ops"),
        ("network/wifi", "Wi-Fi", "network-ops"),
        ("email", "E-mail", "service-desk"),
        ("identity", "Identity and access", "service-desk"),
        ("identity/password-reset", "Password reset", "service-desk"),
        ("hardware", "Hardware", "service-desk"),
        ("hardware/laptop", "Laptop", "service-desk"),
        ("hardware/printer", "Printer", "service-desk"),
        ("apps", "Applications", "service-desk"),
        ("apps/erp", "ERP", "service-desk"),
    ),
    "security": (
        ("phishing", "Phishing", "security-ops"),
        ("malware", "Malware", "security-ops"),
        ("data-breach", "Data breach", "security-ops"),
        ("data-breach/personal-data", "Personal data", "security-ops"),
        ("access", "Access", "security-ops"),
        ("access/lost-device", "Lost or stolen device", "security-ops"),
    ),
    "medical": (
        ("medication", "Medication", "nursing-safety"),
        ("medication/wrong-dose", "Wrong dose", "nursing-safety"),
        ("medication/allergy", "Allergy", "nursing-safety"),
        ("falls", "Falls", "nursing-safety"),
        ("patient-identification", "Patient identification", "nursing-safety"),
        ("equipment", "Medical equipment", "nursing-safety"),
        ("equipment/infusion-pump", "Infusion pump", "nursing-safety"),
    ),
}


# --------------------------------------------------------------------------------------------------
# Incidents: what is reported, then the lifecycle steps that bring each one to its state
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    action: str
    actor: str
    args: dict[str, Any]


def classify(
    actor: str,
    category: str,
    impact: int,
    urgency: int,
    *,
    team: str = "",
    assignee: str = "",
    outcome: str = "",
    harm_level: str = "",
    priority: int | None = None,
    priority_reason: str = "",
) -> Step:
    args = {
        "category": category,
        "impact": impact,
        "urgency": urgency,
        "team": team,
        "assignee": assignee,
        "outcome": outcome,
        "harm_level": harm_level,
        "priority": priority,
        "priority_reason": priority_reason,
    }
    return Step("classify", actor, args)


def ack(actor: str) -> Step:
    return Step("acknowledge", actor, {})


def comment(author: str, body: str, *, public: bool = True) -> Step:
    return Step("comment", author, {"body": body, "public": public})


def note(author: str, body: str) -> Step:
    """An internal comment, for responders only."""
    return comment(author, body, public=False)


def escalate(actor: str, team: str, reason: str) -> Step:
    return Step("escalate", actor, {"team": team, "reason": reason})


def hold(actor: str, reason: str, note: str = "") -> Step:
    return Step("hold", actor, {"reason": reason, "note": note})


def resume(actor: str) -> Step:
    return Step("resume", actor, {})


def resolve(actor: str, summary: str) -> Step:
    return Step("resolve", actor, {"summary": summary})


def reopen(actor: str, reason: str) -> Step:
    return Step("reopen", actor, {"reason": reason})


def close(actor: str, cause: str, measures: str, code: str) -> Step:
    return Step("close", actor, {"cause": cause, "measures": measures, "resolution_code": code})


def cancel(actor: str, reason: str, note: str = "", duplicate_of: str = "") -> Step:
    return Step("cancel", actor, {"reason": reason, "note": note, "duplicate_of": duplicate_of})


AWAITING_REPORTER = Incident.HoldReason.AWAITING_REPORTER
AWAITING_VENDOR = Incident.HoldReason.AWAITING_VENDOR
NEAR_MISS, NO_HARM, HARM = Incident.Outcome.NEAR_MISS, Incident.Outcome.NO_HARM, Incident.Outcome.HARM
Code = Incident.ResolutionCode


@dataclass(frozen=True)
class DemoIncident:
    n: int
    domain: str
    title: str
    description: str
    expected_state: str
    reporter: str = ""  # a demo username; empty: anonymous, with reporter_email
    reporter_email: str = ""
    category: str = ""  # chosen by the reporter on the form (optional)
    confidential: bool = False
    outcome: str = ""
    harm_level: str = ""
    channel: str = Incident.Channel.WEB
    steps: tuple[Step, ...] = field(default=())

    @property
    def external_id(self) -> str:
        return f"{EXTERNAL_ID_PREFIX}{self.n}"


S = Incident.State

DEMO_INCIDENTS: tuple[DemoIncident, ...] = (
    # ---------------------------------------------------------------- IT service
    DemoIncident(
        1,
        "it_service",
        "VPN drops every few minutes since this morning",
        "Since about 08:30 my VPN connection drops every **3-5 minutes** and reconnects by itself.\n\n"
        "- Client: GlobalConnect 6.2 on Windows 11\n- Happens at home and on the train\n"
        "- Colleagues in Finance report the same\n\nI lose my ERP session each time.",
        S.CLOSED,
        reporter="reporter",
        category="network/vpn",
        steps=(
            classify("agent", "network/vpn", 2, 2, team="service-desk"),
            ack("agent"),
            note(
                "agent",
                "Three more calls from Finance. Gateway logs show `IKE SA expired` on node `vpn-gw-02`.",
            ),
            escalate(
                "agent",
                "network-ops",
                "Several users affected; gateway-side error, needs network operations.",
            ),
            ack("specialist"),
            comment("specialist", "We found a problem on one of the VPN gateways and are fixing it now."),
            resolve(
                "specialist",
                "The certificate of VPN gateway node 2 was renewed; connections are stable again.",
            ),
            close(
                "agent",
                "The certificate of VPN gateway node `vpn-gw-02` had expired; clients failing over to it "
                "lost "
                "their tunnel.",
                "Certificate renewed; all gateway certificates added to the expiry monitor with a 30-day "
                "warning.",
                Code.CONFIGURATION,
            ),
        ),
    ),
    DemoIncident(
        2,
        "it_service",
        "Wi-Fi on the 3rd floor of building B is unusable",
        "The **corp** Wi-Fi on B3 shows full bars but pages time out. Meeting rooms B3.12 and B3.14 are the "
        "worst. Wired ports work.",
        S.RESPONDING,
        reporter="reporter2",
        category="network/wifi",
        steps=(
            classify("agent", "network/wifi", 2, 2, team="network-ops"),
            ack("specialist"),
            note(
                "specialist",
                "Access point `ap-b3-04` reboots every 10 minutes; PoE budget on the switch looks exhausted.",
            ),
        ),
    ),
    DemoIncident(
        3,
        "it_service",
        "Cannot send e-mails with attachments larger than 5 MB",
        "Sending a 6 MB PDF fails with *552 Message size exceeds maximum permitted*. Last week it worked.",
        S.RECEIVED,
        reporter="reporter",
        category="email",
    ),
    DemoIncident(
        4,
        "it_service",
        "Password reset link says it has expired",
        'I requested a password reset three times. Every link says **"This link has expired"** right away, '
        "even when I click it within a minute.",
        S.CLASSIFIED,
        reporter_email="jordan.lee@example.net",
        category="identity/password-reset",
        steps=(classify("agent", "identity/password-reset", 3, 2, team="service-desk"),),
    ),
    DemoIncident(
        5,
        "it_service",
        "Laptop does not boot after the BIOS update",
        "After last night's BIOS update my laptop shows a black screen with a blinking caps-lock LED.\n\n"
        "Asset tag: `LT-20417`.",
        S.ON_HOLD,
        reporter="reporter2",
        category="hardware/laptop",
        channel=Incident.Channel.PHONE,
        steps=(
            classify("agent", "hardware/laptop", 3, 2, team="service-desk"),
            ack("agent"),
            comment("agent", "A loan laptop is ready for you at the service desk (ground floor)."),
            hold(
                "agent", AWAITING_VENDOR, "Mainboard replacement under warranty, manufacturer ticket 88-1172."
            ),
        ),
    ),
    DemoIncident(
        6,
        "it_service",
        "ERP invoice posting fails with error FI-2041",
        "Posting any vendor invoice fails:\n\n```\nFI-2041: Document could not be posted (period "
        "check)\n```\n\n"
        "Accounts payable is blocked; month-end closing is on Friday.",
        S.ESCALATED,
        reporter="reporter",
        category="apps/erp",
        steps=(
            classify("agent", "apps/erp", 2, 1, team="service-desk"),
            ack("agent"),
            note(
                "agent",
                "Reproduced with a test invoice. Posting periods are open; looks like a defect since patch "
                "24.3.",
            ),
            escalate(
                "agent",
                "vendor-erp",
                "Application defect after the vendor's patch 24.3; vendor ticket opened.",
            ),
        ),
    ),
    DemoIncident(
        7,
        "it_service",
        "Whole office offline: no network on any floor",
        "Nobody in the main office has network access, wired or wireless. Phones (VoIP) are down too.",
        S.RESOLVED,
        reporter="reporter",
        category="network",
        channel=Incident.Channel.PHONE,
        steps=(
            classify("agent", "network", 1, 1, team="network-ops"),
            ack("specialist"),
            comment(
                "specialist",
                "The core switch failed. We are switching to the standby unit; about 20 minutes.",
            ),
            resolve("specialist", "Traffic moved to the standby core switch; all floors are back online."),
        ),
    ),
    DemoIncident(
        8,
        "it_service",
        "No internet in the office",
        "Internet is not working on the 2nd floor.",
        S.CANCELLED,
        reporter="reporter2",
        category="network",
        steps=(
            cancel(
                "agent", Incident.CancelReason.DUPLICATE, "Same core switch outage.", duplicate_of="demo-7"
            ),
        ),
    ),
    DemoIncident(
        9,
        "it_service",
        "Outlook asks for my password again and again",
        "Outlook on my desktop pops up a password prompt every few minutes. Entering the password does not "
        "help.",
        S.CLOSED,
        reporter="reporter2",
        category="email",
        steps=(
            classify("agent", "email", 3, 2, team="service-desk"),
            ack("agent"),
            resolve("agent", "Cleared the cached credentials in Windows Credential Manager."),
            reopen("reporter2", "The prompt came back this morning."),
            comment("reporter2", "It started again right after I connected to the VPN."),
            note("agent", "Old Outlook profile still points to the legacy autodiscover host."),
            resolve("agent", "Recreated the Outlook profile so it uses the current autodiscover record."),
            close(
                "agent",
                "The Outlook profile was created before the mail migration and still used the legacy "
                "autodiscover host.",
                "Profile recreated; a knowledge article describes the check for other users migrated in "
                "2025.",
                Code.CONFIGURATION,
            ),
        ),
    ),
    DemoIncident(
        10,
        "it_service",
        "Need a new wireless mouse",
        "My mouse is worn out, could I get a new one?",
        S.CANCELLED,
        reporter="reporter",
        category="hardware",
        steps=(
            cancel(
                "agent",
                Incident.CancelReason.NOT_AN_INCIDENT,
                "A service request, not an incident: ordered through the hardware catalogue.",
            ),
        ),
    ),
    DemoIncident(
        11,
        "it_service",
        "ERP month-end report runs for hours",
        "The *Open items by vendor* report used to take 5 minutes. Since Monday it runs for 3+ hours and "
        "sometimes times out.",
        S.ON_HOLD,
        reporter="reporter",
        category="apps/erp",
        steps=(
            classify("agent", "apps/erp", 2, 2, team="service-desk"),
            ack("agent"),
            escalate("agent", "vendor-erp", "Query plan changed after the vendor's index maintenance job."),
            hold(
                "agent", AWAITING_VENDOR, "Vendor analyses the database trace; answer promised within 2 days."
            ),
        ),
    ),
    DemoIncident(
        12,
        "it_service",
        "Account locked after changing my password",
        "I changed my password this morning and now my account is locked on every device.",
        S.RESOLVED,
        reporter="reporter",
        category="identity/password-reset",
        steps=(
            classify("agent", "identity/password-reset", 3, 1, team="service-desk"),
            ack("agent"),
            comment(
                "agent",
                "Your phone was still using the old password and locked the account. Please update it there "
                "too.",
            ),
            resolve("agent", "Account unlocked; the old password was removed from the phone's mail app."),
        ),
    ),
    DemoIncident(
        13,
        "it_service",
        "VPN client fails to install on macOS",
        "The installer stops at 80 % with *Installation failed: the system extension was blocked*.",
        S.RECEIVED,
        reporter_email="freelancer.mac@example.net",
        category="network/vpn",
    ),
    DemoIncident(
        14,
        "it_service",
        "Guest Wi-Fi captive portal does not load",
        "Visitors in the lobby cannot get past the guest Wi-Fi login page; it keeps spinning.",
        S.ESCALATED,
        reporter="reporter2",
        category="network/wifi",
        steps=(
            classify("agent", "network/wifi", 2, 2, team="service-desk"),
            ack("agent"),
            escalate("agent", "network-ops", "The portal server is network operations' system."),
            ack("specialist"),
            note(
                "specialist",
                "Portal certificate OK; DNS for `guest.example.org` resolves to the old address.",
            ),
        ),
    ),
    DemoIncident(
        15,
        "it_service",
        'Shared mailbox "Invoices" disappeared from Outlook',
        "The shared mailbox *Invoices* is gone from my Outlook since yesterday.",
        S.ON_HOLD,
        reporter="reporter",
        category="email",
        steps=(
            classify("agent", "email", 3, 3, team="service-desk"),
            ack("agent"),
            comment(
                "agent",
                "Could you tell us whether you use Outlook on the web or the desktop app, and send a "
                "screenshot?",
            ),
            hold("agent", AWAITING_REPORTER, "Asked for the client and a screenshot."),
        ),
    ),
    DemoIncident(
        16,
        "it_service",
        "Laptop battery is swelling",
        "The bottom of my laptop bulges and the touchpad no longer clicks. It gets warm when charging.",
        S.CLOSED,
        reporter="reporter2",
        category="hardware/laptop",
        steps=(
            classify("agent", "hardware/laptop", 3, 1, team="service-desk"),
            ack("agent"),
            comment(
                "agent", "**Please unplug the laptop and do not charge it.** We collect it within the hour."
            ),
            note("agent", "Battery stored in the fire-safe bin; same model as LT-19xxx series recall."),
            resolve("agent", "Laptop replaced; the swollen battery was disposed of safely."),
            close(
                "agent",
                "Battery cell defect of the 2023 laptop series (manufacturer advisory 2026-07).",
                "Laptop replaced; all 14 laptops of the series scheduled for a battery check.",
                Code.FIXED,
            ),
        ),
    ),
    DemoIncident(
        17,
        "it_service",
        "Printer on floor 2 prints blank pages",
        "The printer `PRN-2-EAST` feeds paper but the pages come out blank.",
        S.CLASSIFIED,
        reporter="reporter",
        steps=(classify("agent", "hardware/printer", 2, 3, team="service-desk"),),
    ),
    DemoIncident(
        18,
        "it_service",
        "Cannot log in to the ERP after my role change",
        "I moved from Sales to Purchasing on the 1st. The ERP now says *No authorisation for transaction "
        "ME21N*.",
        S.RESPONDING,
        reporter="reporter",
        category="apps/erp",
        steps=(
            classify("agent", "apps/erp", 3, 2, team="service-desk"),
            ack("agent"),
            comment("reporter", "My manager approved the Purchasing role last week, ticket HR-5521."),
        ),
    ),
    DemoIncident(
        19,
        "it_service",
        "WIN A FREE PHONE!!!",
        "Click here to claim your prize: hxxp://prize.example.invalid",
        S.CANCELLED,
        reporter_email="promo@example.invalid",
        channel=Incident.Channel.EMAIL,
        steps=(cancel("agent", Incident.CancelReason.SPAM, "Spam received on the desk's mailbox."),),
    ),
    # ---------------------------------------------------------------- security
    DemoIncident(
        20,
        "security",
        "Suspicious e-mail asking to confirm payroll details",
        "I received a mail from *payroll-update@examp1e.org* asking me to confirm my bank details via a "
        "link. "
        "I did **not** click it. Forwarded as attachment.",
        S.CLOSED,
        reporter="reporter",
        category="phishing",
        steps=(
            classify("secagent", "phishing", 2, 2, team="security-ops", outcome=NEAR_MISS),
            ack("secagent"),
            note(
                "secagent",
                "Sent to 212 mailboxes. Sender domain blocked, mails purged from all mailboxes; 0 clicks in "
                "proxy logs.",
            ),
            comment("secagent", "Thank you for reporting. The mail was removed from all mailboxes."),
            resolve("secagent", "Phishing campaign blocked and purged; no clicks found."),
            close(
                "secagent",
                "Targeted phishing campaign with a look-alike domain (`examp1e.org`).",
                "Domain blocked at the mail gateway; look-alike domain monitoring enabled; campaign used in "
                "the next awareness newsletter.",
                Code.FIXED,
            ),
        ),
    ),
    DemoIncident(
        21,
        "security",
        "I entered my password on a fake DocuSign page",
        "I clicked on a DocuSign mail and typed my password before I noticed the address was wrong. "
        "Please help, I am embarrassed.",
        S.RESOLVED,
        reporter="reporter2",
        category="phishing",
        confidential=True,
        steps=(
            classify("secagent", "phishing", 3, 1, team="security-ops", outcome=NO_HARM),
            ack("secagent"),
            comment(
                "secagent",
                "Thank you for telling us right away. We reset your password and signed out all sessions.",
            ),
            note(
                "secagent",
                "Sign-in logs: one attempt from a foreign IP, blocked by MFA. No mailbox rules created.",
            ),
            resolve("secagent", "Password reset, sessions revoked, no successful sign-in by the attacker."),
        ),
    ),
    DemoIncident(
        22,
        "security",
        "Antivirus alert: Trojan found on a finance PC",
        "Endpoint protection quarantined `Trojan:Win32/Emotet` on **FIN-PC-031**. The user opened an Excel "
        "attachment from a customer.",
        S.ESCALATED,
        reporter="reporter",
        category="malware",
        channel=Incident.Channel.PHONE,
        steps=(
            classify("secagent", "malware", 2, 1, team="security-ops", outcome=NO_HARM),
            ack("secagent"),
            note(
                "secagent",
                "Host isolated from the network. Same attachment seen on 3 other hosts, not opened there.",
            ),
            escalate(
                "secagent",
                "security-ops",
                "Emotet can lead to ransomware: CISO informed (hierarchical escalation).",
            ),
        ),
    ),
    DemoIncident(
        23,
        "security",
        "Customer list sent to the wrong recipient",
        "An export with names, addresses and phone numbers of about **600 customers** was e-mailed to an "
        "external address by mistake (autocomplete picked the wrong contact).",
        S.ESCALATED,
        reporter="reporter",
        category="data-breach/personal-data",
        confidential=True,
        steps=(
            classify(
                "secagent",
                "data-breach/personal-data",
                2,
                1,
                team="security-ops",
                outcome=HARM,
                priority=1,
                priority_reason="Personal data of ~600 customers; the 72 h authority deadline applies.",
            ),
            ack("secagent"),
            escalate(
                "secagent",
                "security-ops",
                "Personal-data breach: data protection officer and management informed.",
            ),
            note(
                "secagent", "Recipient contacted and asked to delete the mail; written confirmation pending."
            ),
        ),
    ),
    DemoIncident(
        24,
        "security",
        "Lost my company phone on the train",
        "I left my company phone on the 17:42 train to the airport. It has a PIN.",
        S.RESPONDING,
        reporter="reporter2",
        category="access/lost-device",
        steps=(
            classify("secagent", "access/lost-device", 3, 1, team="security-ops", outcome=NO_HARM),
            ack("secagent"),
            note(
                "secagent", "Remote wipe sent through device management; waiting for the device to check in."
            ),
        ),
    ),
    DemoIncident(
        25,
        "security",
        "USB stick found in the car park",
        "I found a USB stick labelled *Salaries 2026* next to the entrance. I did not plug it in. It is in "
        "my drawer.",
        S.RECEIVED,
        reporter_email="facility.staff@example.net",
        confidential=True,
    ),
    DemoIncident(
        26,
        "security",
        "Colleague keeps the admin password on a sticky note",
        "A colleague in the warehouse has the password of the shared admin account on a note on the monitor.",
        S.CLASSIFIED,
        reporter="reporter",
        category="access",
        confidential=True,
        steps=(classify("secagent", "access", 2, 3, team="security-ops", outcome=NEAR_MISS),),
    ),
    DemoIncident(
        27,
        "security",
        "Unknown sign-in to my account from abroad",
        "I got an alert about a sign-in from another country at 03:12. I was asleep.",
        S.ON_HOLD,
        reporter="reporter",
        category="access",
        steps=(
            classify("secagent", "access", 3, 2, team="security-ops", outcome=NEAR_MISS),
            ack("secagent"),
            comment("secagent", "Did you use a travel router or any VPN app on your phone last night?"),
            hold("secagent", AWAITING_REPORTER, "Asked about VPN apps before blocking the IP range."),
        ),
    ),
    DemoIncident(
        28,
        "security",
        "Is this mail from IT real?",
        "I got a mail saying my mailbox is full and I must click to expand it. Is this from you?",
        S.CANCELLED,
        reporter="reporter2",
        category="phishing",
        steps=(
            classify("secagent", "phishing", 3, 3, team="security-ops", outcome=NEAR_MISS),
            cancel(
                "secagent",
                Incident.CancelReason.NOT_AN_INCIDENT,
                "The mail was part of the announced phishing simulation. Well spotted!",
            ),
        ),
    ),
    DemoIncident(
        29,
        "security",
        "Laptop stolen from my car",
        "My laptop was stolen from my car last night. The disk is encrypted; I reported it to the police.",
        S.CLOSED,
        reporter="reporter2",
        category="access/lost-device",
        confidential=True,
        steps=(
            classify("secagent", "access/lost-device", 3, 1, team="security-ops", outcome=NO_HARM),
            ack("secagent"),
            comment("secagent", "Please send us the police report number when you have it."),
            hold("secagent", AWAITING_REPORTER, "Police report number needed for insurance."),
            comment("reporter2", "The police report number is 2026-PR-44817."),
            resume("secagent"),
            note(
                "secagent", "BitLocker status confirmed from management console; device certificate revoked."
            ),
            resolve(
                "secagent", "Device certificate revoked and access tokens invalidated; disk was encrypted."
            ),
            close(
                "secagent",
                "Theft of a laptop left visible in a parked car.",
                "Certificate revoked, replacement issued; travel security guideline reminded to the team.",
                Code.OTHER,
            ),
        ),
    ),
    # ---------------------------------------------------------------- medical
    DemoIncident(
        30,
        "medical",
        "Insulin prescribed at ten times the dose, caught at double-check",
        "Order read **40 IU** instead of 4 IU (decimal point lost in the e-prescription). The second nurse "
        "noticed at the double-check; nothing was given.",
        S.CLOSED,
        reporter="nurse",
        category="medication/wrong-dose",
        outcome=NEAR_MISS,
        harm_level="0",
        steps=(
            classify(
                "nurse",
                "medication/wrong-dose",
                2,
                2,
                team="nursing-safety",
                outcome=NEAR_MISS,
                harm_level="0",
            ),
            ack("nurse"),
            note("nurse", "Same pattern in two other reports this quarter; pharmacy informed."),
            resolve("nurse", "Order corrected by the physician; no dose given."),
            close(
                "nurse",
                "The e-prescribing form accepted a free-text dose and dropped the decimal separator.",
                "Structured dose field with a maximum-dose alert for insulin; double-check kept mandatory.",
                Code.CONFIGURATION,
            ),
        ),
    ),
    DemoIncident(
        31,
        "medical",
        "Patient received penicillin despite a documented allergy",
        "Patient in room 412 received amoxicillin at 14:00. The allergy was in the record but not on the "
        "wristband. Rash and itching at 14:40; physician called, antihistamine given.",
        S.ESCALATED,
        reporter="reporter",
        category="medication/allergy",
        confidential=True,
        steps=(
            classify(
                "nurse", "medication/allergy", 2, 1, team="nursing-safety", outcome=HARM, harm_level="3a"
            ),
            ack("nurse"),
            escalate(
                "nurse", "nursing-safety", "Level 3a: ward manager and patient-safety officer informed."
            ),
            note("nurse", "Root-cause review scheduled with pharmacy and the admitting team on Thursday."),
        ),
    ),
    DemoIncident(
        32,
        "medical",
        "Patient fall in the bathroom, ward 4B",
        "Patient (78) slipped in the bathroom at night, bruise on the left arm. Call bell was out of reach.",
        S.RESPONDING,
        reporter_email="night.shift.4b@example.net",
        category="falls",
        steps=(
            classify("nurse", "falls", 3, 2, team="nursing-safety", outcome=HARM, harm_level="2"),
            ack("nurse"),
            note(
                "nurse",
                "X-ray negative. Fall-risk assessment had not been updated after the sedative change.",
            ),
        ),
    ),
    DemoIncident(
        33,
        "medical",
        "Wristband printed with another patient's name",
        "At admission the wristband showed the name of the previous patient at the same desk. Noticed "
        "before any "
        "procedure.",
        S.RESOLVED,
        reporter="reporter2",
        category="patient-identification",
        steps=(
            classify(
                "nurse",
                "patient-identification",
                2,
                2,
                team="nursing-safety",
                outcome=NEAR_MISS,
                harm_level="0",
            ),
            ack("nurse"),
            resolve("nurse", "Wristband reprinted; the admission printer queue is now cleared per patient."),
        ),
    ),
    DemoIncident(
        34,
        "medical",
        "Infusion pump did not alarm on occlusion",
        "Pump `IP-3301` did not alarm when the line was kinked; noticed at the hourly check. The patient "
        "had no "
        "symptoms.",
        S.ON_HOLD,
        reporter="nurse",
        category="equipment/infusion-pump",
        steps=(
            classify(
                "nurse",
                "equipment/infusion-pump",
                2,
                2,
                team="nursing-safety",
                outcome=NO_HARM,
                harm_level="1",
            ),
            ack("nurse"),
            note("nurse", "Pump taken out of service and labelled; biomedical engineering informed."),
            hold("nurse", AWAITING_VENDOR, "Pump sent to the manufacturer for analysis."),
        ),
    ),
    DemoIncident(
        35,
        "medical",
        "Wet floor without a warning sign, near fall",
        "A visitor almost slipped in the corridor of ward 2A; the floor had just been mopped and there was "
        "no sign.",
        S.RECEIVED,
        reporter="reporter",
        category="falls",
        outcome=NEAR_MISS,
        harm_level="0",
    ),
    DemoIncident(
        36,
        "medical",
        "Antibiotic given two hours late",
        "The 08:00 dose of IV antibiotic was given at 10:10 because the drug was not on the ward.",
        S.RECEIVED,
        reporter_email="anon.nurse@example.net",
        confidential=True,
    ),
    DemoIncident(
        37,
        "medical",
        "Blood sample labelled with the neighbour's label",
        "Two patients in room 208 had their tubes labelled the other way round. The lab noticed a "
        "blood-group "
        "mismatch with earlier results.",
        S.CLASSIFIED,
        reporter="reporter",
        category="patient-identification",
        steps=(
            classify(
                "nurse",
                "patient-identification",
                2,
                2,
                team="nursing-safety",
                outcome=NEAR_MISS,
                harm_level="0",
            ),
        ),
    ),
    DemoIncident(
        38,
        "medical",
        "Fall in bathroom on 4B (night shift)",
        "Reporting the fall in 4B last night again, I was not sure it was sent.",
        S.CANCELLED,
        reporter="reporter2",
        category="falls",
        steps=(
            cancel("nurse", Incident.CancelReason.DUPLICATE, "Already reported.", duplicate_of="demo-32"),
        ),
    ),
    DemoIncident(
        39,
        "medical",
        "Patient fell out of bed, hip fracture",
        "Confused patient climbed over the bed rail at 02:30 and fell. X-ray: **femoral neck fracture**, "
        "surgery needed.",
        S.CLOSED,
        reporter="nurse",
        category="falls",
        confidential=True,
        steps=(
            classify("nurse", "falls", 2, 1, team="nursing-safety", outcome=HARM, harm_level="3b"),
            ack("nurse"),
            escalate(
                "nurse",
                "nursing-safety",
                "Level 3b: chief nursing officer informed (hierarchical escalation).",
            ),
            ack("nurse"),
            note("nurse", "Family informed by the attending physician. Case review held with the ward team."),
            resolve("nurse", "Patient operated on; fall-prevention measures in place on the ward."),
            close(
                "nurse",
                "Delirium was not screened at admission, so the fall-risk plan did not include a low bed and "
                "sensor mat.",
                "Delirium screening added to the admission checklist; low beds and sensor mats ordered for "
                "ward 4B.",
                Code.OTHER,
            ),
        ),
    ),
    DemoIncident(
        40,
        "medical",
        "Allergy wristband missing on admission",
        "A patient with a latex allergy was admitted without the red allergy wristband.",
        S.ON_HOLD,
        reporter="reporter2",
        category="medication/allergy",
        steps=(
            classify(
                "nurse", "medication/allergy", 3, 2, team="nursing-safety", outcome=NEAR_MISS, harm_level="0"
            ),
            ack("nurse"),
            comment(
                "nurse", "Which admission desk was it, and at what time? Then we can check the printer log."
            ),
            hold("nurse", AWAITING_REPORTER, "Asked for the admission desk and time."),
        ),
    ),
    DemoIncident(
        41,
        "medical",
        "Infusion pump programmed with the wrong rate",
        "Heparin ran at 25 ml/h instead of 2.5 ml/h for 30 minutes. Coagulation checked, patient monitored.",
        S.RESOLVED,
        reporter="reporter",
        category="equipment/infusion-pump",
        steps=(
            classify(
                "nurse", "equipment/infusion-pump", 2, 1, team="nursing-safety", outcome=HARM, harm_level="2"
            ),
            ack("nurse"),
            resolve("nurse", "Rate corrected; the drug library of the pump was updated with a hard limit."),
            reopen("reporter", "The drug library on the pumps of ward 3C was not updated."),
            resolve("nurse", "Drug library pushed to all pumps, including ward 3C; verified on each pump."),
        ),
    ),
)
