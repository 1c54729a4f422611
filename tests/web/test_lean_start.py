"""A serving process loads what serving needs; the rest loads with its first use. Each of
these is megabytes of memory held for the process's life (README, "Memory")."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

# Loaded by: the S3 store; thumbnails; folder and audit archives (pycryptodome comes with
# stream-zip); TOTP enrolment's QR code; the sessions list's browser names (with PyYAML).
LOADED_WHEN_USED = (
    "boto3",
    "botocore",
    "PIL",
    "pypdfium2",
    "stream_zip",
    "Crypto",
    "segno",
    "ua_parser",
    "yaml",
)


def test_the_app_and_the_server_start_without_what_they_load_on_first_use() -> None:
    code = (
        "import sys, web.app, web.serve\n"
        f"print(','.join(m for m in {LOADED_WHEN_USED!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_each_of_them_is_installed() -> None:
    # Otherwise the check above would pass for a misspelt or uninstalled name.
    missing = [name for name in LOADED_WHEN_USED if importlib.util.find_spec(name) is None]
    assert missing == []
