"""The IMAP poll is on the beat schedule only when IMAP_HOST is set (settings are read at start-up)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "from config.settings import base; print('intake-poll-imap' in base.CELERY_BEAT_SCHEDULE)"


@pytest.mark.parametrize(("host", "expected"), [("imap.example.org", "True"), ("", "False")])
def test_beat_entry_only_with_imap_host(host, expected):
    env = {**os.environ, "IMAP_HOST": host}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)

    assert out.stdout.strip() == expected
