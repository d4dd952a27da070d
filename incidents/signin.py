"""The signed-in person of a console request and their roles, read by one statement.

Django's AuthenticationMiddleware loads the user with `User.objects.get(pk=...)` (the ORM compiles it on every
request), then the first visibility check reads the roles (`desk_user`) with a second statement. Here both are
one statement written out once: the user's row and the three columns of `roles_sql`, remembered on the user
object as `desk_user` would (`remember_roles`). Everything else is `django.contrib.auth.get_user`'s: a missing
or inactive user is anonymous, and a session whose password hash no longer matches (the password was changed
elsewhere) is flushed; a hash of a fallback secret key is moved to the current one. Sessions signed in through
another backend than ModelBackend, and a user first asked for inside `reports_reads()` (Django reads the person
from the replica but the roles from the primary), go through Django's own `get_user`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser, User
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from accounts.rows import converter_of

from .selectors import ROLES_PARAMS, remember_roles, roles_sql

# The backend whose `get_user` this module reads for: `User.objects.get(pk=...)`, None when not is_active.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with `request.user` from `get_user` below (still lazy: a request that never asks for its user
    reads nothing)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: get_user(request))  # type: ignore[assignment]


def get_user(request: HttpRequest) -> Any:
    """`django.contrib.auth.get_user`, with the user and their roles read by one statement."""
    session = request.session
    try:
        user_id = auth._get_user_session_key(request)  # type: ignore[attr-defined]
        backend_path = session[auth.BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path != MODEL_BACKEND or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return auth.get_user(request)
    if router.db_for_read(User) != DEFAULT_DB_ALIAS:
        # Inside reports_reads() (config.dbrouter): Django reads the person there but their roles (desk_user)
        # from the primary, which one statement cannot do.
        return auth.get_user(request)
    user = user_with_roles(user_id)
    if user is None:
        return AnonymousUser()
    # Verify the session, as django.contrib.auth.get_user does.
    session_hash = session.get(auth.HASH_SESSION_KEY)
    if session_hash:
        session_auth_hash = user.get_session_auth_hash()
        if constant_time_compare(session_hash, session_auth_hash):
            return user
        if any(
            constant_time_compare(session_hash, fallback_auth_hash)
            for fallback_auth_hash in user.get_session_auth_fallback_hash()
        ):
            session.cycle_key()
            session[auth.HASH_SESSION_KEY] = session_auth_hash
            return user
    session.flush()
    return AnonymousUser()


def user_with_roles(user_id: Any) -> User | None:
    """The active user `user_id` with their roles remembered (`desk_user` reads no more), or None."""
    alias = router.db_for_read(User)
    connection = connections[alias]
    sql, names, converters = _user_statement(alias)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user": user_id, **ROLES_PARAMS})
        row = cursor.fetchone()
    if row is None:
        return None
    count = len(names)
    values = [
        convert(value) if convert else value for value, convert in zip(row[:count], converters, strict=True)
    ]
    user = User.from_db(alias, names, values)
    if not user.is_active:
        return None
    remember_roles(user, row[count:])
    return user


_statements: dict[str, tuple[str, list[str], list[Any]]] = {}


def _user_statement(alias: str) -> tuple[str, list[str], list[Any]]:
    """The statement (the user's columns, then roles_sql's), the fields' attribute names, their converters."""
    found = _statements.get(alias)
    if found is None:
        quote = connections[alias].ops.quote_name
        fields = User._meta.concrete_fields
        table = quote(User._meta.db_table)
        columns = ", ".join(f"{table}.{quote(str(field.column))}" for field in fields)
        pk = f"{table}.{quote(str(User._meta.pk.column))}"
        sql = f"SELECT {columns}, {roles_sql(pk)} FROM {table} WHERE {pk} = %(user)s"  # noqa: S608
        found = _statements[alias] = (
            sql,
            [field.attname for field in fields],
            [converter_of(User, field.name, alias) for field in fields],
        )
    return found
