"""The data directory: private to the service account (review item 10).

It holds the SQLite database and its -wal/-shm files, the mail outbox (whose messages carry
live invitation and reset links), the local object store and, by default, the key file. So
it is created 0700, every file in it 0600, and the portal refuses to start when the
directory is open to the group or to others, as `vault.crypto.keyring` does for the key file.
"""

from __future__ import annotations

import os
import stat

from web.settings import Settings, SettingsError

DIR_MODE = 0o700


class DataDirError(SettingsError):
    """The data directory is group- or world-accessible; the message says how to fix it."""


def _uses_data_dir(settings: Settings) -> bool:
    """Whether any embedded default (SQLite, local objects, outbox, key file) lives there."""
    return (
        not settings.database.url
        or settings.storage.backend == "local"
        or not settings.smtp.host
        or not settings.keys.file
    )


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory 0700 if something lives there, then check its mode.

    Raises:
        DataDirError: the directory is group- or world-accessible.
    """
    path = settings.data_dir
    if not path.exists():
        if not _uses_data_dir(settings):
            return
        # Only the last component gets `mode`; parents are the operator's to choose.
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    check_data_dir(settings)


def check_data_dir(settings: Settings) -> None:
    """Raise `DataDirError` when the data directory exists and others may enter or list it."""
    path = settings.data_dir
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if os.name == "posix" and mode & 0o077:
        raise DataDirError(
            f"data directory {path} has mode {mode:04o}, so other users may read the "
            f"database, the mail outbox and the stored objects; run `chmod 700 {path}`"
        )
