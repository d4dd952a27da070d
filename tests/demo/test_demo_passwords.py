"""The demo users' passwords are stored with fewer PBKDF2 rounds (they are printed for everyone to read) and
re-hashed at the project's full count the first time each is used."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password
from django.test import override_settings

from demo.catalogue import demo_password
from demo.management.commands.seed_demo import DEMO_PBKDF2_ITERATIONS, demo_hasher

PBKDF2 = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]


@override_settings(PASSWORD_HASHERS=PBKDF2)
def test_a_demo_hash_is_cheap_and_upgraded_to_the_full_count_at_first_use():
    stored = make_password(demo_password("agent"), hasher=demo_hasher())
    assert stored.startswith(f"pbkdf2_sha256${DEMO_PBKDF2_ITERATIONS}$")
    assert PBKDF2PasswordHasher.iterations > DEMO_PBKDF2_ITERATIONS
    assert PBKDF2PasswordHasher.iterations == 1_000_000  # the class attribute is left alone
    upgraded: list[str] = []
    assert check_password(
        demo_password("agent"), stored, setter=lambda raw: upgraded.append(make_password(raw))
    )
    assert len(upgraded) == 1
    assert upgraded[0].startswith(f"pbkdf2_sha256${PBKDF2PasswordHasher.iterations}$")
    assert check_password(demo_password("agent"), upgraded[0])
    assert not check_password("wrong", stored)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
def test_another_preferred_hasher_is_used_as_it_is():
    assert demo_hasher().algorithm == "md5"
