"""Session engines (SESSION_ENGINE): Django's `db` and `cached_db`, with the session read from the database by
one statement written out once (`accounts.sessions.db`, `accounts.sessions.cached_db`)."""
