pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.app",
    "tests.fixtures.live",
    "tests.fixtures.smtp",
    "tests.fixtures.cluster_world",
]
