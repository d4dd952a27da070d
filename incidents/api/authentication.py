"""`Authorization: Token <key>` in one SQL statement: the token, its user and the user's roles (DeskUser), and on
PostgreSQL the token's last-use write in the same statement.

accounts.authentication.TokenAuthentication reads the token with its user; the request then reads the user's
roles (incidents.selectors.desk_user) and, at most once a minute per token, writes the last use: three round
trips on an API create whose budget is six statements in all. The roles columns come from
incidents.selectors.roles_sql, the one place they are written, and are memoised on the user exactly as
desk_user memoises them. The configuration stamp (incidents.hooks.config_stamp_sql) comes along too, as the
token's `config_token`: a create announced under it (hooks.configuration) reads no webhook configuration that
has not changed since.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone
from rest_framework import exceptions

from accounts.authentication import LAST_USED_RESOLUTION
from accounts.authentication import TokenAuthentication as AccountsTokenAuthentication
from accounts.models import ApiToken, hash_key
from incidents import hooks
from incidents.selectors import ROLES_PARAMS, remember_roles, roles_sql

User = get_user_model()
Converter = Callable[[Any, Any, Any], Any]


class TokenAuthentication(AccountsTokenAuthentication):
    """accounts' token authentication (header parsing, messages, hashed keys, last use once a minute),
    with the roles read in the same statement."""

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        now = timezone.now()
        stale = now - LAST_USED_RESOLUTION
        params: dict[str, Any] = {"key_hash": hash_key(key), "now": now, "stale": stale, **ROLES_PARAMS}
        with connection.cursor() as cursor:
            _execute(cursor, _lookup_sql(connection.vendor == "postgresql", hooks.config_stamp_sql()), params)
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token, user = _rows_to_objects(row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.last_used_at is None or token.last_used_at < stale:
            if connection.vendor != "postgresql":
                # No writable CTE here: the write is a statement of its own (once a minute per token).
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        token.user = user
        token.config_token = row[-4]  # type: ignore[attr-defined]  # read with it: see hooks.configuration
        remember_roles(user, row[-3:])
        return user, token


def _fields(model: type[Model]) -> list[Field[Any, Any]]:
    return list(model._meta.concrete_fields)


@functools.cache
def _lookup_sql(writable_cte: bool, stamp_sql: str | None) -> str:
    """The token (by key hash) with its user, the configuration stamp (`stamp_sql`, NULL without one) and the
    user's roles; with `writable_cte`, the last-use write of an active user's token last used before
    %(stale)s too. That write does not change what the SELECT sees (one snapshot): the caller sets
    `last_used_at` on the object as the write did."""
    token_table, user_table = ApiToken._meta.db_table, User._meta.db_table
    columns = [f't."{f.column}"' for f in _fields(ApiToken)] + [f'u."{f.column}"' for f in _fields(User)]
    select = f"""
        SELECT {", ".join(columns)}, ({stamp_sql or "NULL"}), {roles_sql('u."id"')}
        FROM "{token_table}" t JOIN "{user_table}" u ON u."id" = t."user_id"
        WHERE t."key_hash" = %(key_hash)s
    """  # noqa: S608 (the names are the models' tables and columns; the values are parameters)
    if not writable_cte:
        return select
    return f"""
        WITH touched AS (
            UPDATE "{token_table}" SET "last_used_at" = %(now)s
            WHERE "key_hash" = %(key_hash)s AND ("last_used_at" IS NULL OR "last_used_at" < %(stale)s)
              AND "user_id" IN (SELECT "id" FROM "{user_table}" WHERE "is_active")
            RETURNING 1
        )
        {select}
    """  # noqa: S608 (as above)


# The lookup is a prepared statement of each PostgreSQL connection: planning it (a join, the roles' EXISTS and
# subqueries, the writable CTE) cost PostgreSQL several times what running it does, on every request. A
# prepared statement lives on its server connection, outside transactions (a rollback keeps it), so it is
# off behind a pooler that hands a client's statements to other server connections (DATABASE_POOLING,
# docs/operations.md). Which statements a connection has prepared is kept on Django's connection object,
# for the driver connection it had then: a new driver connection prepares again.
_PARAMETER = re.compile(r"%\((\w+)\)s")


@functools.cache
def _prepare(sql: str) -> tuple[str, str, tuple[str, ...]]:
    """The statement's name, its PREPARE (named parameters as $1, $2 ...) and the parameters' names."""
    names = tuple(dict.fromkeys(_PARAMETER.findall(sql)))
    numbered = _PARAMETER.sub(lambda match: f"${names.index(match.group(1)) + 1}", sql)
    name = "idesk_token_lookup_" + hashlib.sha256(sql.encode()).hexdigest()[:16]
    return name, f"PREPARE {name} AS {numbered}", names


def _execute(cursor: Any, sql: str, params: dict[str, Any]) -> None:
    """Run `sql` as this connection's prepared statement (EXECUTE, preceded in the same round trip by its
    PREPARE the first time on this driver connection); as it is on other databases, behind a pooler, and on
    a connection where that first time failed (what it left is unknown)."""
    if connection.vendor != "postgresql" or settings.DATABASE_POOLING:
        cursor.execute(sql, params)
        return
    name, prepare, names = _prepare(sql)
    raw = connection.connection
    held = getattr(connection, "_prepared_lookups", None)
    if held is None or held[0] is not raw:
        held = (raw, {})
        connection._prepared_lookups = held  # type: ignore[attr-defined]
    prepared: dict[str, bool] = held[1]
    execute = f"EXECUTE {name}({', '.join(f'%({n})s' for n in names)})"
    if prepared.get(name) is True:
        cursor.execute(execute, params)
    elif name in prepared:
        cursor.execute(sql, params)
    else:
        prepared[name] = False  # a failure below leaves it so
        cursor.execute(f"{prepare}; {execute}", params)
        prepared[name] = True


@functools.cache
def _converters() -> list[tuple[list[Converter], Any]]:
    """Per column, the conversions the ORM applies to a value read from this database (SQLite's datetimes
    arrive as text, its booleans as integers; PostgreSQL's need none)."""
    found = []
    for model in (ApiToken, User):
        for field in _fields(model):
            column = field.get_col(model._meta.db_table)
            found.append(
                (connection.ops.get_db_converters(column) + field.get_db_converters(connection), column)
            )
    return found


def _rows_to_objects(row: tuple[Any, ...]) -> tuple[ApiToken, Any]:
    values = list(row[:-4])
    for index, (converters, column) in enumerate(_converters()):
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    split = len(_fields(ApiToken))
    token = ApiToken.from_db(connection.alias, [f.attname for f in _fields(ApiToken)], values[:split])
    user = User.from_db(connection.alias, [f.attname for f in _fields(User)], values[split:])
    return token, user
