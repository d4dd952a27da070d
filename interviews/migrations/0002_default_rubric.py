"""The default rubric of INTERVIEWS.md: six dimensions, each level anchored to observable behaviour."""

from django.db import migrations

DIMENSIONS = [
    (
        "information_gathering",
        "Information gathering",
        {
            "1": "Asks few or no questions; works from the presentation alone.",
            "2": "Asks scattered questions; misses obvious areas such as recent changes or impact.",
            "3": "Covers the main areas (timeline, impact, changes) but follows up little.",
            "4": "Asks targeted questions, follows up on answers, finds most key facts.",
            "5": "Plans the inquiry, narrows down systematically, finds every key fact early and ignores noise.",
        },
    ),
    (
        "situational_reasoning",
        "Situational reasoning",
        {
            "1": "Cannot say what is happening from the facts given.",
            "2": "Describes symptoms but does not connect facts.",
            "3": "Connects facts into a plausible picture with gaps.",
            "4": "Builds a coherent picture and states what is still unknown.",
            "5": "Builds and tests competing explanations against the facts and updates them as facts arrive.",
        },
    ),
    (
        "problem_extraction",
        "Problem extraction",
        {
            "1": "States no problem, or only restates the symptom.",
            "2": "States a trigger but confuses it with the cause.",
            "3": "Separates trigger and cause; misses contributing factors.",
            "4": "States cause and contributing factors, each backed by facts.",
            "5": "States trigger, cause, contributing factors and process gaps, each backed by cited facts.",
        },
    ),
    (
        "solution_quality",
        "Solution quality and priority",
        {
            "1": "Proposes nothing useful, or something harmful.",
            "2": "Proposes fixes that do not address the stated problems.",
            "3": "Proposes relevant fixes without a sensible order.",
            "4": "Proposes relevant mitigation, fix and prevention in a sensible order with reasons.",
            "5": "Mitigates first, fixes and prevents with clear reasons, weighs side effects and communication.",
        },
    ),
    (
        "judgement_under_uncertainty",
        "Judgement under uncertainty",
        {
            "1": "Assumes facts without asking and acts on them.",
            "2": "Notices uncertainty but does not act on it.",
            "3": "Separates known from assumed; sometimes acts on assumptions.",
            "4": "Names assumptions and chooses actions that are safe whichever way they turn out.",
            "5": "Quantifies uncertainty, chooses reversible actions, and says what would change the plan.",
        },
    ),
    (
        "communication",
        "Communication",
        {
            "1": "Unclear; the panel cannot follow.",
            "2": "Understandable with effort; rambles or leaves out the point.",
            "3": "Clear, if not structured.",
            "4": "Clear and structured; checks understanding.",
            "5": "Concise, structured and adapted to the audience, including who must be told what and when.",
        },
    ),
]


def create(apps, schema_editor):
    Rubric = apps.get_model("interviews", "Rubric")
    RubricDimension = apps.get_model("interviews", "RubricDimension")
    rubric, _ = Rubric.objects.get_or_create(
        slug="incident-process",
        defaults={
            "name": "Incident process",
            "description": "The default rubric of the incident-process method.",
        },
    )
    for order, (key, name, anchors) in enumerate(DIMENSIONS):
        RubricDimension.objects.get_or_create(
            rubric=rubric, key=key, defaults={"name": name, "weight": 1, "order": order, "anchors": anchors}
        )


class Migration(migrations.Migration):
    dependencies = [("interviews", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
