"""The INSERT of a new row, compiled once per model and process instead of once per save.

`Model.save()` builds an InsertQuery and compiles it (a placeholder, a quoted column and a prepared value for
each of the incident's 60 columns) on every insert: on an API create that was more CPU than the rest of the
row's save. A model that takes `CompiledInsert` as a base is saved exactly as before (`save()`, its signals,
`pre_save` of each field, the values prepared by `get_db_prep_save`, the primary key read back with
RETURNING); only the statement's text is the one Django compiled for the first row, kept for the next ones.

It applies when the statement is the same for every row: each value a plain parameter (no expression, no
field that writes its own placeholder) and a database that returns columns from an INSERT (PostgreSQL,
SQLite). Otherwise the row is inserted as Django does it.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import connections
from django.db.models import Field, Model
from django.db.models.sql import InsertQuery

# (model, database alias, columns, returned columns) -> (SQL, the parameters of its RETURNING clause)
_statements: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}


class CompiledInsert:
    """A model base: its INSERT statement is compiled once per process (see the module's docstring)."""

    def _do_insert(
        self, manager: Any, using: str, fields: list[Field[Any, Any]], returning_fields: Any, raw: bool
    ) -> Any:
        connection = connections[using]
        values = [] if raw else [field.pre_save(self, add=True) for field in fields]  # type: ignore[arg-type]
        if (
            raw
            or not returning_fields
            or not connection.features.can_return_columns_from_insert
            or any(hasattr(value, "resolve_expression") for value in values)
            or any(hasattr(field, "get_placeholder") for field in fields)
        ):
            return super()._do_insert(manager, using, fields, returning_fields, raw)  # type: ignore[misc]
        model = cast(type[Model], type(self))
        key = (model, using, tuple(f.attname for f in fields), tuple(f.attname for f in returning_fields))
        statement = _statements.get(key)
        if statement is None:
            statement = _statements[key] = _compile(model, using, fields, returning_fields, self)
        sql, returning_params = statement
        params = [
            field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = list(connection.ops.fetch_returned_insert_columns(cursor, returning_params))  # type: ignore[attr-defined]
        table = model._meta.db_table
        for index, field in enumerate(returning_fields):
            column = field.get_col(table)
            for convert in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
                row[index] = convert(row[index], column, connection)
        return [tuple(row)]


def _compile(
    model: type[Model], using: str, fields: list[Field[Any, Any]], returning_fields: Any, row: Any
) -> tuple[str, tuple[Any, ...]]:
    """What Django compiles for inserting `row` (a plain placeholder per value: see _do_insert's checks). Its
    fields' `pre_save` already ran (raw: not again, so that an `auto_now` keeps the value that is written)."""
    query = InsertQuery(model)
    query.insert_values(fields, [row], raw=True)
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = returning_fields
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(fields):
        raise AssertionError(
            f"{model.__name__}'s INSERT has {len(params)} parameters for {len(fields)} columns"
        )
    return sql, tuple(compiler.returning_params)
