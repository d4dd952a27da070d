"""The everyday incidents of the demo's history: what people report in each category, how the desk
answers, fixes and closes it. demo.history draws from these with a seeded random generator."""

from __future__ import annotations

from dataclasses import dataclass

from incidents.models import Incident

Code = Incident.ResolutionCode


@dataclass(frozen=True)
class Story:
    """One kind of incident: its category, how often it comes, its impact and urgency, and the words."""

    domain: str
    category: str
    weight: int
    impact_urgency: tuple[tuple[int, int], ...]
    titles: tuple[str, ...]
    details: tuple[str, ...]
    fixes: tuple[str, ...]
    cause: str
    measures: str
    code: str = Code.FIXED


STORIES: tuple[Story, ...] = (
    # ------------------------------------------------------------------------------------ IT service
    Story(
        "it_service",
        "identity/password-reset",
        14,
        ((3, 2), (3, 3), (3, 1)),
        (
            "Password reset link does not arrive",
            "Locked out after the password change",
            "Account locked after holiday",
            "Cannot log in to Windows after the reset",
            "MFA prompt never reaches my phone",
        ),
        (
            "I reset my password this morning and now nothing accepts it.",
            "The self-service portal says my account is locked. I have a customer call at 11:00.",
            "The authenticator app shows no request when I sign in.",
        ),
        (
            "Account unlocked and the cached password removed from the phone.",
            "MFA method re-registered with the user on the phone.",
            "Password reset at the desk; the user signed in successfully.",
        ),
        "An old password cached on a second device locked the account.",
        "Knowledge article on updating the password on every device linked in the reset mail.",
        Code.USER_ERROR,
    ),
    Story(
        "it_service",
        "email",
        10,
        ((3, 2), (2, 2), (3, 3)),
        (
            "Outlook keeps asking for my password",
            "Mails to a customer bounce back",
            "Calendar invitations are not delivered",
            "Shared mailbox missing in Outlook",
            "Out-of-office cannot be switched on",
        ),
        (
            "Since yesterday Outlook prompts for the password every few minutes.",
            "Every mail to the customer's domain comes back with *550 rejected*.",
            "Colleagues say they never got my meeting invitation for Thursday.",
        ),
        (
            "Outlook profile recreated; the prompt is gone.",
            "Mailbox permissions re-applied; the shared mailbox shows again.",
            "The customer's mail server had blocked our relay; unblocked after our call with them.",
        ),
        "A stale Outlook profile pointed to the legacy autodiscover host.",
        "Profiles of users migrated in 2025 are recreated at their next visit to the desk.",
        Code.CONFIGURATION,
    ),
    Story(
        "it_service",
        "hardware/laptop",
        8,
        ((3, 2), (3, 3)),
        (
            "Laptop does not start",
            "Laptop screen flickers",
            "Docking station: no external monitor",
            "Laptop fan very loud and hot",
            "Keyboard keys stuck after coffee spill",
        ),
        (
            "The power LED blinks orange and nothing happens.",
            "The screen flickers as soon as I open the lid more than halfway.",
            "Since the update the monitors on the dock stay black.",
        ),
        (
            "Docking station firmware updated; both monitors work.",
            "Laptop swapped for a loan device; the faulty one is with the repair service.",
            "BIOS reset and battery recalibrated; the laptop starts again.",
        ),
        "Hardware fault of a single device.",
        "Device repaired under warranty; the asset record was updated.",
    ),
    Story(
        "it_service",
        "hardware/printer",
        6,
        ((3, 3), (2, 3)),
        (
            "Printer on floor 2 prints blank pages",
            "Cannot add the follow-me printer",
            "Printer jams on every second page",
            "Scan to e-mail does not send",
        ),
        (
            "The printer feeds paper but the pages are blank.",
            "Windows says the printer driver is not available.",
            "Scanned documents never arrive in my mailbox.",
        ),
        (
            "Toner cartridge replaced and print heads cleaned.",
            "Driver package published to the software centre; printer added.",
            "SMTP relay for the scanner re-enabled.",
        ),
        "Consumables and driver packages of the printer fleet.",
        "Printer fleet monitoring now raises a ticket at 10 % toner.",
    ),
    Story(
        "it_service",
        "network/vpn",
        9,
        ((3, 2), (2, 2), (2, 1)),
        (
            "VPN drops every few minutes",
            "VPN client cannot connect from home",
            "VPN connects but no intranet pages load",
            "VPN very slow in the afternoon",
        ),
        (
            "The tunnel drops and reconnects every few minutes; I lose my ERP session each time.",
            "The client says *gateway not reachable* since this morning.",
            "Connected, but the intranet and the file shares time out.",
        ),
        (
            "Client moved to the stable gateway pool; connection stable again.",
            "Split-tunnel profile re-deployed to the laptop.",
            "Gateway node restarted after a memory leak; tunnels are stable.",
        ),
        "A VPN gateway node dropped tunnels after failover.",
        "Gateway pool monitored for tunnel resets; vendor patch scheduled.",
        Code.CONFIGURATION,
    ),
    Story(
        "it_service",
        "network/wifi",
        6,
        ((2, 2), (3, 2), (2, 3)),
        (
            "Wi-Fi in meeting room B3.12 unusable",
            "Guest Wi-Fi login page does not load",
            "Wi-Fi drops in the canteen",
            "Cannot join the corporate Wi-Fi with a new phone",
        ),
        (
            "Full bars but every page times out; wired ports work.",
            "Visitors cannot get past the guest login page.",
            "The connection drops every few minutes around lunchtime.",
        ),
        (
            "Access point replaced; coverage measured in the room.",
            "Certificate of the guest portal renewed.",
            "Channel plan changed to avoid interference; stable since.",
        ),
        "Access point overload and channel interference.",
        "Two access points added; channel plan reviewed every quarter.",
        Code.CONFIGURATION,
    ),
    Story(
        "it_service",
        "apps/erp",
        7,
        ((2, 2), (2, 1), (3, 2)),
        (
            "ERP invoice posting fails",
            "ERP report runs for hours",
            "No authorisation in the ERP after my role change",
            "ERP session freezes when saving an order",
        ),
        (
            "Posting any vendor invoice fails with error FI-2041.",
            "The open-items report used to take 5 minutes; now it times out.",
            "The ERP says *No authorisation for transaction ME21N*.",
        ),
        (
            "Role assignment corrected; transaction works.",
            "Vendor hotfix applied to the posting module.",
            "Index rebuilt on the open-items table; the report takes 4 minutes again.",
        ),
        "A defect in the vendor's patch and a missing role mapping.",
        "Vendor hotfix installed; role mapping added to the joiner-mover process.",
        Code.THIRD_PARTY,
    ),
    Story(
        "it_service",
        "network",
        3,
        ((2, 1), (1, 2)),
        (
            "No network on the 4th floor",
            "Network very slow in building A",
            "Phones (VoIP) drop calls",
        ),
        (
            "Nobody on our floor has network access, wired or wireless.",
            "Everything is slow since 9 o'clock; file copies take ages.",
            "Calls drop after about a minute.",
        ),
        (
            "Floor switch replaced; all ports are up.",
            "Broadcast storm found and the looping port shut down.",
            "QoS policy restored on the core switch.",
        ),
        "A failed floor switch and a cabling loop.",
        "Loop protection enabled on every access port; spare switch stocked.",
    ),
    # ------------------------------------------------------------------------------------- security
    Story(
        "security",
        "phishing",
        12,
        ((3, 2), (2, 2), (3, 3)),
        (
            "Suspicious mail asking for bank details",
            "Fake invoice mail with a link",
            "I clicked a link in a strange mail",
            "Mail pretends to come from the CEO",
            "Parcel notification with an attachment",
        ),
        (
            "The sender address looks almost like ours. I did not click anything.",
            "I clicked the link but closed the page before typing anything.",
            "The mail asks me to buy gift cards urgently and keep it confidential.",
        ),
        (
            "Sender blocked at the mail gateway; the mail purged from all mailboxes.",
            "Link blocked at the proxy; no credentials entered; the user was thanked for reporting.",
            "Password reset and sessions revoked as a precaution; no misuse found.",
        ),
        "Phishing campaigns with look-alike domains.",
        "Look-alike domain monitoring enabled; campaign used in the awareness newsletter.",
    ),
    Story(
        "security",
        "malware",
        3,
        ((2, 1), (3, 1)),
        (
            "Antivirus alert on my PC",
            "Strange pop-ups and a slow PC",
            "Files renamed with an unknown extension",
        ),
        (
            "Endpoint protection quarantined a file from a customer's attachment.",
            "Since this morning pop-ups open by themselves.",
            "Several files on my desktop now end in `.locked`.",
        ),
        (
            "Host isolated, reimaged and restored from the backup.",
            "Adware removed; browser extensions locked down by policy.",
        ),
        "Malware delivered by a mail attachment.",
        "Macros from the internet blocked by policy; host reimaged.",
    ),
    Story(
        "security",
        "access/lost-device",
        3,
        ((3, 1), (3, 2)),
        (
            "Lost my company phone",
            "Laptop stolen from the car",
            "Left my badge and token on the train",
        ),
        (
            "I cannot find my phone since the trip home yesterday. It has a PIN.",
            "The car was broken into last night; the laptop bag is gone.",
        ),
        (
            "Device wiped remotely and certificates revoked.",
            "Token revoked and a replacement issued.",
        ),
        "Loss or theft of a company device.",
        "Remote wipe confirmed; travel security guideline reminded to the team.",
        Code.OTHER,
    ),
    Story(
        "security",
        "access",
        3,
        ((3, 2), (2, 3)),
        (
            "Unknown sign-in to my account",
            "Colleague shares the admin password",
            "Former employee still has access",
        ),
        (
            "I got an alert about a sign-in from another country at night.",
            "The shared admin password is on a note on the monitor.",
            "An account of someone who left last month is still active.",
        ),
        (
            "Account secured, the IP range blocked, MFA re-registered.",
            "Admin password rotated and moved to the password vault.",
            "Account disabled; leaver process fixed with HR.",
        ),
        "Weak credential handling and a gap in the leaver process.",
        "Password vault for shared accounts; leaver checklist includes the ERP and the VPN.",
        Code.CONFIGURATION,
    ),
    Story(
        "security",
        "data-breach/personal-data",
        1,
        ((2, 1),),
        (
            "Customer list sent to the wrong recipient",
            "Personal data in a public share",
        ),
        (
            "An export with customer names and addresses went to an external address by mistake.",
            "A share with HR documents was readable by everyone in the company.",
        ),
        (
            "Recipient confirmed deletion in writing; the authority was notified within 72 h.",
            "Share permissions fixed; access log reviewed: no external access.",
        ),
        "Autocomplete picked the wrong recipient; a share was created without an owner.",
        "Delay-send rule for external mail with attachments; share owner review every quarter.",
        Code.OTHER,
    ),
    # -------------------------------------------------------------------------------------- medical
    Story(
        "medical",
        "medication/wrong-dose",
        10,
        ((2, 2), (3, 2)),
        (
            "Wrong insulin dose prepared, caught at double-check",
            "Tenfold dose in the e-prescription",
            "Paediatric dose calculated for an adult weight",
            "Dose missed at the night round",
        ),
        (
            "The second nurse noticed the dose at the double-check; nothing was given.",
            "The order read 40 IU instead of 4 IU; the pharmacy called back.",
            "The weight field still held the previous patient's value.",
        ),
        (
            "Order corrected by the physician; the double-check worked as intended.",
            "Pharmacy added a maximum-dose alert for the drug.",
            "Dose given with a delay; the patient was monitored, no effect.",
        ),
        "Free-text doses in the e-prescription and a weight field that was not reset.",
        "Structured dose field with maximum-dose alerts; the weight is re-entered per order.",
        Code.CONFIGURATION,
    ),
    Story(
        "medical",
        "medication/allergy",
        4,
        ((2, 2), (2, 1)),
        (
            "Allergy not on the wristband",
            "Antibiotic prepared despite a documented allergy",
        ),
        (
            "The allergy was in the record but not on the wristband; noticed before giving it.",
            "The nurse stopped the infusion when the patient mentioned the allergy.",
        ),
        (
            "Wristband reprinted; the allergy banner checked in the record.",
            "Allergy flag made mandatory before the first order.",
        ),
        "The allergy field was not carried over to the wristband print.",
        "Wristband template prints the allergy banner; admission checklist updated.",
    ),
    Story(
        "medical",
        "falls",
        6,
        ((3, 2), (2, 2)),
        (
            "Patient fall in the bathroom",
            "Near fall on a wet corridor floor",
            "Patient found on the floor next to the bed",
        ),
        (
            "The call bell was out of reach; the patient slipped at night.",
            "A visitor almost slipped; there was no warning sign.",
            "The bed rail was down; the patient had a bruise on the arm.",
        ),
        (
            "Fall-risk assessment updated; low bed and sensor mat in place.",
            "Warning signs restocked on every cleaning trolley.",
            "X-ray negative; fall prevention plan reviewed with the ward team.",
        ),
        "Fall-risk assessments not updated after a change in medication.",
        "Reassessment after every sedative change; sensor mats on the high-risk wards.",
        Code.OTHER,
    ),
    Story(
        "medical",
        "patient-identification",
        4,
        ((2, 2),),
        (
            "Blood sample labelled with the wrong patient",
            "Wristband with another patient's name",
            "Two patients with the same name on one ward",
        ),
        (
            "The lab noticed a blood-group mismatch with earlier results.",
            "The admission printer still held the previous patient's label.",
            "Two patients named Müller in room 208; the chart was nearly swapped.",
        ),
        (
            "Samples taken again; the labels are printed at the bedside now.",
            "Printer queue cleared per patient; a name alert set on the ward.",
        ),
        "Labels printed away from the bedside.",
        "Bedside label printing on every ward; name alerts for look-alike names.",
        Code.CONFIGURATION,
    ),
    Story(
        "medical",
        "equipment/infusion-pump",
        3,
        ((2, 2), (2, 1)),
        (
            "Infusion pump did not alarm on occlusion",
            "Infusion pump programmed with the wrong rate",
            "Pump battery empty during transport",
        ),
        (
            "The line was kinked and the pump gave no alarm; noticed at the hourly check.",
            "The rate was set to 25 ml/h instead of 2.5 ml/h for 30 minutes.",
            "The pump switched off in the lift on the way to radiology.",
        ),
        (
            "Pump taken out of service and analysed by the manufacturer.",
            "Drug library updated with a hard limit for the drug.",
            "Batteries of the transport pumps replaced and checked weekly.",
        ),
        "Pump drug library without hard limits and ageing batteries.",
        "Hard limits in the drug library; battery checks on the weekly device round.",
        Code.THIRD_PARTY,
    ),
)

REPLIES = (
    "Thank you, we are looking into it now.",
    "We can reproduce it and are working on a fix.",
    "A colleague is on the way to you.",
    "Thanks for the details. We will update you within the hour.",
)
QUESTIONS = (
    "Could you send us a screenshot of the error and the time it happened?",
    "Which device and which room was it? Then we can check the logs.",
    "Can you tell us whether it happens on the web as well?",
)
REPORTER_ANSWERS = (
    "Screenshot attached in my mail; it happened at about 10:15.",
    "It was room 3.14, my laptop LT-20417.",
    "It happens on the web as well.",
)
NOTES = (
    "Checked the logs: the error started after last night's change.",
    "Same pattern as last week; linking the knowledge article.",
    "Called the reporter back; the workaround helps for now.",
)
RATING_COMMENTS = {
    5: ("Quick and friendly, thank you!", "Fixed before my meeting, great."),
    4: ("Good help, took a little while.", ""),
    3: ("It works now, but I had to ask twice.", ""),
    2: ("Took far too long for something this urgent.",),
    1: ("Nobody told me anything for two days.",),
}
ANONYMOUS_REPORTERS = (
    "jordan.lee@example.net",
    "night.shift.4b@example.net",
    "m.keller@example.net",
    "front.desk@example.net",
    "a.novak@example.net",
)
