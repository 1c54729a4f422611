"""Restoring a backup's objects into S3: an object too large for `MAX_PARTS` parts of the
configured size goes up in larger parts, as the store's multipart etag (`-N`) shows. A
real object would need 78 GiB; `MAX_PARTS` is lowered so that 13 MiB does."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage import S3ObjectStore
from tests.fixtures.live import Pattern
from vault import backup, store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


async def test_a_large_object_is_restored_in_larger_parts(
    s3_store: S3ObjectStore,
    s3_bucket: tuple[S3Client, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "MAX_PARTS", 2)
    key, body = f"objects/{uuid.uuid4()}/{uuid.uuid4()}", Pattern("restore").read(0, 13 * MiB)
    source = backup.object_path(tmp_path, key)
    source.parent.mkdir(parents=True)
    source.write_bytes(body)
    listed = {"key": key, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    (tmp_path / backup.OBJECT_LIST).write_text(json.dumps(listed) + "\n")

    copied = await backup.restore_objects(s3_store, tmp_path, part_size=5 * MiB)

    assert (copied.objects, copied.bytes) == (1, len(body))
    client, bucket = s3_bucket
    stored = client.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == body
    # 13 MiB in two parts of 7 MiB, not three of 5.
    assert stored["ETag"].strip('"').endswith("-2")
