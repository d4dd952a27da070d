import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("incidentdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task: Any = None, **kwargs: Any) -> None:
    """Around each task, keep the process's database connections as Django keeps them across requests:
    close only one that is broken, saw an error, or is older than CONN_MAX_AGE. (Celery's own Django fixup
    would close every connection before and after each task: a burst of delivery tasks then opened a new
    PostgreSQL connection each, a backend forked with cold caches. CELERY_DB_REUSE_MAX turns that off.)
    A task run eagerly, inside a caller's transaction, is left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
