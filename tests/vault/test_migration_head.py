"""The migration gate reads the head from the migration files itself, so serving needs no
Alembic (with Mako and Pygments, about 11 MiB of every server process)."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from vault.db import alembic_config, head_revision


def test_the_head_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_the_app_loads_no_alembic_until_it_migrates() -> None:
    probe = (
        "import sys, web.app, vault.db; "
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
