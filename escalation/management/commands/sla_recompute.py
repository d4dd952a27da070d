from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from escalation.recompute import recompute
from incidents.models import Incident


class Command(BaseCommand):
    help = "Rebuild SLA clocks from the timeline, for one incident or every open one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--incident", help="A reference, e.g. INC-000042.")
        parser.add_argument("--all", action="store_true", help="Closed and cancelled incidents too.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["incident"]:
            incidents = Incident.objects.by_reference(options["incident"])
            if not incidents.exists():
                raise CommandError(f"No incident {options['incident']}.")
        else:
            incidents = Incident.objects.all() if options["all"] else Incident.objects.open()
        done = clocks = 0
        for pk in incidents.order_by("pk").values_list("pk", flat=True).iterator():
            clocks += recompute(Incident(pk=pk))
            done += 1
        self.stdout.write(self.style.SUCCESS(f"Recomputed {clocks} clocks on {done} incidents."))
