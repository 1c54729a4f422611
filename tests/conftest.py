import pytest

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.app",
    "tests.fixtures.live",
    "tests.fixtures.smtp",
    "tests.fixtures.browser",
    "tests.fixtures.clamd",
    "tests.fixtures.cluster_world",
]

# Fixtures whose use puts a test in a lane of its own (see the markers in pyproject.toml).
LIVE_FIXTURES = frozenset({"live_app"})


def _uses_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        return True
    return "postgres_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the servers it needs, so `scripts/test --fast` can leave the slow
    lanes out without every test module having to remember its markers."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        if _uses_postgresql(item):
            item.add_marker(pytest.mark.postgresql)
        if names & LIVE_FIXTURES:
            item.add_marker(pytest.mark.live)
        if module is not None and any(
            getattr(value, "__module__", "").startswith("playwright")
            for value in vars(module).values()
        ):
            item.add_marker(pytest.mark.browser)
