"""``python manage.py seed_demo``: demo users, teams and categories, then sixty days of history.

Idempotent: configuration is created with get_or_create (existing objects are kept as they are,
passwords included). The history (demo.history) is played once: a database that holds demo incidents
(``external_id`` ``demo-...``) gets none added. Incidents are created only through ``incidents.services``
and moved only by ``incidents.lifecycle`` (and ``major``/``problems``) under a moving clock, with the
escalation engine sweeping at that clock, so every timeline, breach and escalation is a real one.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import BasePasswordHasher, PBKDF2PasswordHasher, get_hasher, make_password
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from demo import escalation_config
from demo.catalogue import (
    DEMO_CATEGORIES,
    DEMO_INCIDENTS,
    DEMO_TEAMS,
    DEMO_USERS,
    EMAIL_DOMAIN,
    EXTERNAL_ID_PREFIX,
    demo_password,
)
from demo.history import LAST_ARRIVAL, History, HistoryError, notification_counts
from incidents.models import Category, Domain, Incident, Membership, Team

# The demo passwords are printed on the console and in the README: a slow hash of them protects nothing. They are
# stored with the project's hasher (PBKDF2) at fewer rounds, and Django re-hashes each at the full count the first
# time its user signs in (the hasher's must_update); a password changed since is hashed in full as always. At the
# full million rounds the nine demo users cost about 2 s of CPU (0.24 s each, measured), a tenth of the seed.
DEMO_PBKDF2_ITERATIONS = 20_000


def demo_hasher() -> BasePasswordHasher:
    """The preferred hasher; a PBKDF2 one at DEMO_PBKDF2_ITERATIONS (any other is used as it is)."""
    hasher = get_hasher("default")
    if isinstance(hasher, PBKDF2PasswordHasher):
        hasher = copy.copy(hasher)
        hasher.iterations = DEMO_PBKDF2_ITERATIONS
    return hasher


class Command(BaseCommand):
    help = (
        "Load demo users, teams and categories, then play about 60 days of desk history through the real "
        "lifecycle (a few hundred incidents, SLA breaches, escalations, a major incident, problems, ratings). "
        "Safe to run again: existing data is kept and nothing is created twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Do not print the table of demo users.")
        parser.add_argument(
            "--days", type=int, default=60, help="How many days of history to play (default 60, at least 7)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        days = options["days"]
        if days < 7:
            raise CommandError("--days: at least 7 days, so that the hand-written incidents fit.")
        with transaction.atomic():
            users, new_users = self._users()
            teams, new_teams = self._teams(users)
            categories, new_categories = self._categories(teams)
            # The SLA and escalation configuration comes first, so that the demo incidents run on it.
            escalation_config.seed(users, teams)

        demo = Incident.objects.filter(external_id__startswith=EXTERNAL_ID_PREFIX)
        created, sweeps, started = 0, 0, time.monotonic()
        if not demo.exists():
            end = timezone.now().replace(second=0, microsecond=0)
            history = History(end=end, days=days, users=users, teams=teams, categories=categories)
            try:
                summary = history.run()
            except HistoryError as exc:
                raise CommandError(f"Could not seed the demo history: {exc}") from exc
            created, sweeps = summary.incidents, summary.sweeps
            self._check_curated()
        elif not demo.filter(external_id=LAST_ARRIVAL).exists():
            raise CommandError(
                "An earlier seed_demo stopped part-way: the history is incomplete. Start from an empty "
                "database (`python manage.py flush`, then `migrate`) and run seed_demo again."
            )

        if verbosity == 0:
            return
        there = demo.count() - created
        notifications = notification_counts()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {created} incidents created, {there} already there; "
                f"{len(new_users)} of {len(users)} users, {new_teams} of {len(teams)} teams and "
                f"{new_categories} of {len(categories)} categories created."
            )
        )
        if created:
            self.stdout.write(
                f"History of {days} days played in {time.monotonic() - started:.1f} s: {sweeps} sweeps of the "
                f"escalation engine, {notifications['sent']} notifications delivered at their time (to a "
                "mailbox that keeps nothing: they belong to the past)."
            )
        if not options["quiet"]:
            self._print_table(users, new_users)

    def _check_curated(self) -> None:
        """Each hand-written story ends in the state it was written for (a resolved one may have been
        closed by the quiet-period sweep when the quiet period is short)."""
        states = dict(
            Incident.objects.filter(external_id__in=[s.external_id for s in DEMO_INCIDENTS]).values_list(
                "external_id", "state"
            )
        )
        auto = set(
            Incident.objects.filter(auto_closed=True, external_id__in=list(states)).values_list(
                "external_id", flat=True
            )
        )
        for spec in DEMO_INCIDENTS:
            state = states.get(spec.external_id)
            if state == spec.expected_state or (
                spec.expected_state == Incident.State.RESOLVED and spec.external_id in auto
            ):
                continue
            raise CommandError(
                f"{spec.external_id} ({spec.title}) ended in {state}, expected {spec.expected_state}"
            )

    # -- configuration ---------------------------------------------------------------------------------

    def _users(self) -> tuple[dict[str, Any], set[str]]:
        user_model = get_user_model()
        users: dict[str, Any] = {}
        created_names: set[str] = set()
        for demo in DEMO_USERS:
            user, created = user_model.objects.get_or_create(
                **{user_model.USERNAME_FIELD: demo.username},
                defaults={
                    "email": f"{demo.username}@{EMAIL_DOMAIN}",
                    "first_name": demo.first_name,
                    "last_name": demo.last_name,
                    "is_staff": demo.superuser,
                    "is_superuser": demo.superuser,
                },
            )
            if created:
                created_names.add(demo.username)
            for perm in demo.permissions:
                app_label, codename = perm.split(".", 1)
                user.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
            users[demo.username] = user
        # Only now, and only for new users: a re-run keeps a password that was changed since.
        hasher = demo_hasher()
        for user in users.values():
            if user.get_username() in created_names:
                user.password = make_password(demo_password(user.get_username()), hasher=hasher)
                user.save(update_fields=["password"])
        return users, created_names

    def _teams(self, users: dict[str, Any]) -> tuple[dict[str, Team], int]:
        teams: dict[str, Team] = {}
        created_count = 0
        for demo in DEMO_TEAMS:
            team, created = Team.objects.get_or_create(
                slug=demo.slug,
                defaults={
                    "name": demo.name,
                    "tier": demo.tier,
                    "email": f"{demo.slug}@{EMAIL_DOMAIN}",
                    "manager": users[demo.manager],
                },
            )
            if created:
                team.domains.set([self._domain(slug) for slug in demo.domains])
                created_count += 1
            for username in demo.members:
                Membership.objects.get_or_create(team=team, user=users[username])
            teams[demo.slug] = team
        return teams, created_count

    def _categories(self, teams: dict[str, Team]) -> tuple[dict[tuple[str, str], Category], int]:
        categories: dict[tuple[str, str], Category] = {}
        created_count = 0
        for domain_slug, nodes in DEMO_CATEGORIES.items():
            domain = self._domain(domain_slug)
            for path, name, team_slug in nodes:
                parent_path, _, slug = path.rpartition("/")
                category, created = Category.objects.get_or_create(
                    domain=domain,
                    path=path,
                    defaults={
                        "parent": categories[(domain_slug, parent_path)] if parent_path else None,
                        "slug": slug,
                        "name": name,
                        "default_team": teams[team_slug],
                    },
                )
                created_count += created
                categories[(domain_slug, path)] = category
        return categories, created_count

    @staticmethod
    def _domain(slug: str) -> Domain:
        try:
            return Domain.objects.get(slug=slug)
        except Domain.DoesNotExist:
            raise CommandError(f"Domain {slug!r} is missing: run `python manage.py migrate` first.") from None

    # -- output ----------------------------------------------------------------------------------------

    def _print_table(self, users: dict[str, Any], new_users: set[str]) -> None:
        rows = []
        for demo in DEMO_USERS:
            password = demo_password(demo.username)
            if demo.username not in new_users and not users[demo.username].check_password(password):
                password = "(changed since seeding, not shown)"  # noqa: S105 - a message, not a password
            rows.append((demo.username, demo.role, password))
        headers = ("username", "role", "password")
        widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(3)]
        line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031 - a format built from the widths
        self.stdout.write("")
        self.stdout.write("Demo users (demo passwords: change them before anyone else can reach this desk):")
        self.stdout.write("  " + line.format(*headers).rstrip())
        self.stdout.write("  " + line.format(*("-" * w for w in widths)).rstrip())
        for row in rows:
            self.stdout.write("  " + line.format(*row).rstrip())
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write("")
        self.stdout.write(f"Django admin: {site}/admin/")
        self.stdout.write(f"API docs:     {site}/api/docs/")
