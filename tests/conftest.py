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

# Fixtures whose use puts a test in a lane of its own (see the markers in pyproject.toml):
# each runs the app as server processes (`served` is tests/web/test_serve.py's).
LIVE_FIXTURES = frozenset({"live_app", "cluster_world", "served"})
# Fixtures that need the PostgreSQL server (`cluster_world` asks for it as it runs, so the
# server is not in its tests' fixture closure).
POSTGRESQL_FIXTURES = frozenset({"postgres_server", "cluster_world"})


def _uses_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        return True
    return bool(POSTGRESQL_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the servers it needs, so `scripts/test --fast` can leave the slow
    lanes out without every test module having to remember its markers."""
    # Imported here, once pytest_plugins loaded it, so its asserts are still rewritten.
    from tests.fixtures.live import LiveAppLauncher

    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        # A cluster is app nodes behind nginx on a PostgreSQL server, whichever fixture or
        # helper a test builds it with.
        cluster = item.get_closest_marker("cluster") is not None
        if cluster or _uses_postgresql(item):
            item.add_marker(pytest.mark.postgresql)
        if (
            cluster
            or names & LIVE_FIXTURES
            or (
                # Modules that start their servers through a launcher of their own.
                module is not None and any(v is LiveAppLauncher for v in vars(module).values())
            )
        ):
            item.add_marker(pytest.mark.live)
        if module is not None and any(
            getattr(value, "__module__", "").startswith("playwright")
            for value in vars(module).values()
        ):
            item.add_marker(pytest.mark.browser)
