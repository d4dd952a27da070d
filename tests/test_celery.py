"""The Celery app's settings that a burst of deliveries depends on (config/celery.py, config/settings/base.py):
a worker keeps its database connection from task to task, and takes urgent prompts before waiting default ones.
The queue order is checked on a Redis server of its own (tests/escalation/processes.py)."""

from __future__ import annotations

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings
from django.db import connection
from kombu import Connection, Exchange, Queue

from config.celery import app
from config.settings.base import REDIS_TRANSPORT_OPTIONS
from tests.conftest import require_service
from tests.escalation.processes import RedisServer, have_redis_server

DELIVER = "escalation.tasks.deliver_notifications"
# The connection tests (marked postgres) close and reopen the test database's connection, on PostgreSQL as
# production workers run: SQLite's in-memory test database would be gone with its connection, and every later
# test with it.


def run_around(task, fixup: DjangoWorkerFixup) -> None:
    """What a worker does around a task: the signals (our handler) and the Django fixup Celery installs."""
    signals.task_prerun.send(sender=task, task_id="t1", task=task, args=(), kwargs={})
    fixup.on_task_prerun(sender=task)
    signals.task_postrun.send(sender=task, task_id="t1", task=task, args=(), kwargs={}, retval=None)
    fixup.on_task_postrun(sender=task)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_from_task_to_task():
    task, fixup = app.tasks[DELIVER], DjangoWorkerFixup(app)
    connection.ensure_connection()
    connection.close_at = None  # as with CONN_MAX_AGE=None (the suite's own is 0)
    raw = connection.connection
    for _ in range(3):
        run_around(task, fixup)
    assert connection.connection is raw
    assert not raw.closed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_broken_connection_is_replaced_before_the_next_task():
    task, fixup = app.tasks[DELIVER], DjangoWorkerFixup(app)
    connection.ensure_connection()
    connection.close_at = None
    broken = connection.connection
    broken.close()  # the server went away under the worker
    connection.errors_occurred = True  # as Django marks it after the failed query
    run_around(task, fixup)
    assert connection.connection is not broken
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_old_connection_is_still_closed_after_conn_max_age():
    task, fixup = app.tasks[DELIVER], DjangoWorkerFixup(app)
    connection.ensure_connection()
    connection.close_at = 0  # its CONN_MAX_AGE ran out long ago
    run_around(task, fixup)
    assert connection.connection is None


def test_a_worker_takes_every_urgent_prompt_before_a_waiting_default_one(tmp_path):
    require_service("redis-server", have_redis_server(), "install redis-server")
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        with Connection(redis.url, transport_options=dict(REDIS_TRANSPORT_OPTIONS)) as conn:
            # In the order the delivery workers are given them (tests/escalation/processes.py, Procfile.dev).
            queues = [
                Queue(name, Exchange(name), name) for name in ("urgent", settings.CELERY_TASK_DEFAULT_QUEUE)
            ]
            producer = conn.Producer()
            for queue, label in ((queues[1], "warning"), (queues[0], "breach")):  # the warnings were first
                for n in range(3):
                    producer.publish({"n": f"{label}{n}"}, exchange=queue.exchange, routing_key=queue.name,
                                     declare=[queue])  # fmt: skip
            taken: list[str] = []

            def take(body, message) -> None:
                taken.append(body["n"])
                message.ack()

            with conn.Consumer(queues, callbacks=[take], prefetch_count=1):
                while len(taken) < 6:
                    conn.drain_events(timeout=5)
        assert taken == ["breach0", "breach1", "breach2", "warning0", "warning1", "warning2"]
    finally:
        redis.stop()
