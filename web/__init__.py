"""The composition root: settings, the Starlette app, routes and the `clientvault` CLI."""
