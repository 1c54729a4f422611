"""The layering check of scripts/check_imports.py: the tree passes it, and it catches a layer
above vault that writes the audit log itself, audit rows built outside vault/audit/, and
database code in vault/crypto/."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check_imports() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / "scripts/check_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tree_passes(check_imports: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_imports.main() == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    "source",
    [
        "from vault import audit\nawait audit.record(s, c, AuditAction.DOCUMENT_VIEWED)\n",
        "from vault import audit as log\nawait log.append(s, c, 'document.viewed')\n",
        "import vault.audit\nawait vault.audit.record(s, c, action)\n",
        "import vault.audit as a\nawait a.record_verification(s, c, result)\n",
        "from vault.audit import record\nawait record(s, c, action)\n",
    ],
)
def test_a_write_to_the_audit_log_above_vault_is_caught(
    check_imports: ModuleType, source: str
) -> None:
    found = check_imports.audit_writes(source, "web/planted.py")
    assert found and all(line.startswith("web/planted.py:") for line in found)


def test_the_audit_modules_types_and_reads_stay_open(check_imports: ModuleType) -> None:
    source = (
        "from vault import audit, documents\n"
        "from vault.audit import AuditContext\n"
        "context = audit.AuditContext(actor_role='cli')\n"
        "result = await audit.verify(session)\n"
        "await documents.record_view(session, context, document)\n"
        "await links.record(session, context, action, link)\n"
    )
    assert check_imports.audit_writes(source, "web/planted.py") == []


def test_a_layer_above_vault_that_records_fails_the_check(
    check_imports: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for package in check_imports.ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "notify" / "planted.py").write_text(
        "from vault import audit\n\n\nasync def f(s, c, a):\n    await audit.record(s, c, a)\n"
    )
    (tmp_path / "vault" / "owner.py").write_text(
        "from vault import audit\n\n\nasync def f(s, c, a):\n    await audit.record(s, c, a)\n"
    )
    monkeypatch.setattr(check_imports, "ROOT", tmp_path)
    assert check_imports.main() == 1
    assert capsys.readouterr().out.splitlines() == ["notify/planted.py:5: calls vault.audit.record"]


@pytest.mark.parametrize(
    "source",
    [
        "session.add(AuditEvent(seq=1, action='x'))\n",
        "await session.execute(update(AuditHead).values(seq=0))\n",
        "await session.execute(delete(AuditEvent))\n",
        "row = models.AuditEvent(seq=1)\n",
    ],
)
def test_audit_rows_built_outside_the_audit_package_are_caught(
    check_imports: ModuleType, source: str
) -> None:
    assert check_imports.audit_rows(source, "vault/planted.py")
    assert check_imports.audit_rows("rows = select(AuditEvent)\n", "vault/planted.py") == []


@pytest.mark.parametrize(
    "source",
    [
        "from sqlmodel import select\n",
        "import sqlalchemy\n",
        "from vault import db\n",
        "from vault.models import AuditEvent\n",
    ],
)
def test_database_code_in_the_crypto_package_is_caught(
    check_imports: ModuleType, source: str
) -> None:
    assert check_imports.crypto_imports(source, "vault/crypto/planted.py")
    assert check_imports.crypto_imports("from vault.errors import IntegrityError\n", "x.py") == []
