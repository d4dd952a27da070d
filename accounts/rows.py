"""Model instances from rows read by statements written out once (the session, the signed-in user)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections

Converter = Callable[[Any], Any]

_converters: dict[tuple[type, str, str], Converter | None] = {}


def converter_of(model: Any, name: str, alias: str) -> Converter | None:
    """What the ORM applies to a value of the field `name` read from the database `alias` (SQLite's datetimes
    made aware, its booleans ...): the backend's converters, then the field's; None when there are none.
    Built once per field and database."""
    key = (model, name, alias)
    if key not in _converters:
        connection = connections[alias]
        field = model._meta.get_field(name)
        column = field.get_col(model._meta.db_table)
        steps = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]

        def convert(value: Any) -> Any:
            for step in steps:
                value = step(value, column, connection)
            return value

        _converters[key] = convert if steps else None
    return _converters[key]
