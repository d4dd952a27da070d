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

from collections.abc import Sequence
from typing import Any, cast

from django.db import connections, router
from django.db.models import AutoField, Field, Model
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


def bulk_insert(objs: Sequence[Model]) -> None:
    """`QuerySet.bulk_create(objs)` for new rows of one model, with its statement compiled once per process.

    On PostgreSQL Django writes two rows or more as one `INSERT ... SELECT * FROM UNNEST(%s, ...)` (one array
    per column) whose text does not depend on the number of rows, yet compiles it again on every call (a
    placeholder and a prepared value per cell, and their arrays): on a monitoring event that opens an incident,
    the clocks, timers and entries took a third of the CPU. Here the rows get what bulk_create gives them
    (primary keys from `get_pk_value_on_save`, related objects' keys, `pre_save`, `get_db_prep_save`, the
    returned columns converted and set, `_state` no longer adding); only the text is kept. Any other case (one
    row, a row with its primary key, an expression, a column UNNEST cannot take, another database) is
    bulk_create itself.
    """
    if not objs:
        return
    model = type(objs[0])
    using = router.db_for_write(model)
    connection = connections[using]
    opts = model._meta
    fields = [
        cast(Field, f) for f in opts.concrete_fields if not f.generated and not isinstance(f, AutoField)
    ]
    if (
        len(objs) < 2
        or connection.vendor != "postgresql"
        or any(type(obj) is not model or obj.pk is not None for obj in objs)
        or any(hasattr(field, "get_placeholder") for field in fields)
        or any(
            (cast(Any, f).target_field if f.is_relation else f).get_internal_type()
            not in connection.data_types
            for f in fields
        )
    ):
        model._default_manager.using(using).bulk_create(list(objs))
        return
    for obj in objs:
        cast(Any, obj)._prepare_related_fields_for_save(operation_name="bulk_create")
    rows = [[field.pre_save(obj, add=True) for field in fields] for obj in objs]
    if any(hasattr(value, "resolve_expression") for row in rows for value in row):
        model._default_manager.using(using).bulk_create(list(objs))
        return
    returning = list(opts.db_returning_fields)
    key = (model, using, "bulk", tuple(f.attname for f in fields), tuple(f.attname for f in returning))
    if key not in _bulk_statements:
        _bulk_statements[key] = _compile_bulk(model, using, fields, returning, objs[:2])
    sql = _bulk_statements[key]
    if sql is None:
        model._default_manager.using(using).bulk_create(list(objs))
        return
    params = [
        [field.get_db_prep_save(row[index], connection) for row in rows] for index, field in enumerate(fields)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    if len(returned) != len(objs):
        raise AssertionError(f"{model.__name__}: {len(returned)} rows returned for {len(objs)} inserted")
    table = opts.db_table
    converters = [
        (
            index,
            field.get_col(table),
            connection.ops.get_db_converters(field.get_col(table)) + field.get_db_converters(connection),
        )
        for index, field in enumerate(returning)
    ]
    for obj, values in zip(objs, returned, strict=True):
        for index, column, convert_all in converters:
            value = values[index]
            for convert in convert_all:
                value = convert(value, column, connection)
            setattr(obj, returning[index].attname, value)
        obj._state.adding = False
        obj._state.db = using


# (model, database alias, "bulk", columns, returned columns) -> SQL
_bulk_statements: dict[tuple[Any, ...], str | None] = {}


def _compile_bulk(
    model: type[Model], using: str, fields: list[Field[Any, Any]], returning: list[Any], rows: Sequence[Model]
) -> str | None:
    """What Django compiles for inserting `rows` (two or more, their `pre_save` already run) if it is the UNNEST
    form, one parameter per column whatever the number of rows; else None (bulk_create then does it)."""
    query = InsertQuery(model)
    query.insert_values(fields, list(rows), raw=True)
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = returning
    [(sql, params)] = compiler.as_sql()
    return sql if "UNNEST(" in sql and len(params) == len(fields) else None
