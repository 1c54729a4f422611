"""The test suite's own layout: shared helpers live in tests/fixtures/, and no test module
imports from another, so each can be read, moved and run on its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def is_test_module(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:])


def imports_of_test_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of each import in `source` (a module of `package`) that reaches into
    a test module, relative imports included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if is_test_module(module):
                found.append((node.lineno, module))
            else:  # `from tests.web import test_pages` names the module in its list
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, module) for line, module in found if is_test_module(module)]


def test_no_module_of_the_suite_imports_from_a_test_module() -> None:
    offending = []
    for path in python_files():
        package = ".".join(path.relative_to(TESTS.parent).parts[:-1])
        for line, module in imports_of_test_modules(path.read_text(encoding="utf-8"), package):
            offending.append(f"{path.relative_to(TESTS.parent)}:{line}: {module}")
    assert not offending, "move the shared helpers into tests/fixtures/:\n" + "\n".join(offending)


def test_helpers_beside_the_tests_live_in_fixtures() -> None:
    strays = [
        str(path.relative_to(TESTS.parent))
        for path in python_files()
        if not path.name.startswith("test_")
        and path.name not in {"__init__.py", "conftest.py"}
        and TESTS / "fixtures" not in path.parents
    ]
    assert not strays, f"helper modules outside tests/fixtures/: {strays}"


def test_the_check_sees_each_way_of_importing_from_a_test_module() -> None:
    source = (
        "from tests.web.test_pages import csrf_of\n"
        "from . import test_tus\n"
        "from .test_cli import ok\n"
        "import tests.notify.test_notify\n"
        "from tests.fixtures.pages import csrf_of\n"
        "from tests.fixtures import app\n"
    )
    assert [m for _, m in imports_of_test_modules(source, "tests.web")] == [
        "tests.web.test_pages",
        "tests.web.test_tus",
        "tests.web.test_cli",
        "tests.notify.test_notify",
    ]
