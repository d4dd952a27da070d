"""The README's screenshots exist, and the `make screenshots` it names is a target that runs the script that
takes them from the demo data (the script itself runs a browser; `make screenshots` is how it is run)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_screenshot_the_readme_names_exists():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"docs/screenshots/([\w-]+\.png)", readme)) | set(
        re.findall(r"`([\w-]+\.png)`", readme)
    )
    assert {"console-queue-countdowns.png", "reports-demo.png", "interviews-landing-phone.png"} <= named
    for name in named:
        assert (ROOT / "docs" / "screenshots" / name).is_file(), name
    assert "make screenshots" in readme


def test_make_screenshots_runs_the_script():
    plan = subprocess.run(
        ["make", "--dry-run", "--always-make", "screenshots", "BIN=/venv/bin"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "/venv/bin/python scripts/screenshots.py" in plan.stdout
