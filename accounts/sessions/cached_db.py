"""Django's cached database sessions (the cache first, the database when the cache has lost the session), with
the database read of `accounts.sessions.db`."""

from __future__ import annotations

from django.contrib.sessions.backends import cached_db

from . import db


class SessionStore(cached_db.SessionStore, db.SessionStore):
    """cached_db's `load` and writes; `_get_session_from_db` from accounts.sessions.db (next in the MRO)."""
