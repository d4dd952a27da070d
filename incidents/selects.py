"""A SELECT compiled once per shape and process instead of once per read (as incidents.inserts does for INSERTs).

Django compiles a queryset's SQL (every column of every joined table quoted, each condition compiled) each time
it runs: on the incident page that was about a millisecond for each of its reads, more than PostgreSQL took to
answer them. `compiled_list(key, build, value)` is `list(build(value))`: the queryset `build` makes is compiled
for the first call of a `key` only, with a placeholder where `value` goes; later calls run the same SQL with
the placeholder's parameter replaced, and make the model instances as Django does (`Model.from_db`, the joined
rows of `select_related`, each column through its database converters).

`key` names everything but the values that shapes the SQL (the reader's visibility, how many values, say); the
values are integers (primary keys), as many as `build` takes. Rows are not cached: each call reads the
database.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

# Where the values go in the first compilation: numbers no primary key takes (keys are positive).
PLACEHOLDER = -917_263_545


@dataclass(frozen=True)
class _Statement:
    compiler: Any
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, int], ...]  # (index of a parameter, index of the value that goes there)
    db: str
    # How a row becomes instances, worked out once too: the model's columns, and the joined models' populators.
    names: tuple[str, ...]
    start: int
    end: int
    populators: tuple[Any, ...]
    # Each column's database converters, per connection (the backend's are bound to its connection): finding
    # them again for every read was a third of a read's CPU.
    converters: weakref.WeakKeyDictionary[Any, dict[int, Any]] = field(
        default_factory=weakref.WeakKeyDictionary
    )


_statements: dict[tuple[Any, ...], _Statement | None] = {}


def _compile(build: Callable[..., QuerySet[Any]], count: int) -> _Statement | None:
    placeholders = [PLACEHOLDER - index for index in range(count)]
    queryset = build(*placeholders)
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # nothing to read (Django answers it without a statement): read as Django does
        return None
    slots = tuple(
        (index, placeholders.index(param))
        for index, param in enumerate(params)
        if isinstance(param, int) and param in placeholders
    )
    # Only a statement whose one changing value is a plain parameter can be reused (not one with the value in
    # its text, rows known to the queryset beforehand, or annotations, which ModelIterable would set).
    if (
        {value for _, value in slots} != set(range(count))
        or any(str(placeholder) in sql for placeholder in placeholders)
        or queryset._known_related_objects  # type: ignore[attr-defined]
        or compiler.annotation_col_map
    ):
        return None
    select, klass_info = compiler.select, compiler.klass_info
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    names = tuple(column[0].target.attname for column in select[start:end])
    populators = tuple(get_related_populators(klass_info, select, queryset.db))  # type: ignore[call-arg]
    return _Statement(compiler, sql, tuple(params), slots, queryset.db, names, start, end, populators)


def compiled_list(key: tuple[Any, ...], build: Callable[..., QuerySet[M]], *values: int) -> list[M]:
    """`list(build(*values))`, its SQL compiled once per `key` and process (see the module's docstring)."""
    key = (*key, len(values))
    if key not in _statements:
        _statements[key] = _compile(build, len(values))
    statement = _statements[key]
    if statement is None:
        return list(build(*values))
    params = list(statement.params)
    for index, value in statement.slots:
        params[index] = values[value]
    # A copy per read: the compiler's connection is this thread's, and its SQL is the stored one.
    connection = connections[statement.db]
    compiler = copy.copy(statement.compiler)
    compiler.connection = connection
    compiler.as_sql = lambda *args, **kwargs: (statement.sql, tuple(params))
    converters = statement.converters.get(connection)
    if converters is None:
        columns = [column[0] for column in compiler.select[0 : compiler.col_count]]
        converters = statement.converters[connection] = compiler.get_converters(columns)
    compiler.get_converters = lambda expressions: converters
    results = compiler.execute_sql()
    model: type[M] = compiler.klass_info["model"]
    names, start, end, populators = statement.names, statement.start, statement.end, statement.populators
    rows = []
    for row in compiler.results_iter(results):
        obj = model.from_db(statement.db, names, row[start:end])
        for populator in populators:
            populator.populate(row, obj)
        rows.append(obj)
    return rows
