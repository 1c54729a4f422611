"""The boto3 client every S3 store and tool of ours uses: retries, timeouts and signing
settings that suit S3-compatible servers as well as AWS."""

from __future__ import annotations

import functools
import gzip
import json
import os
import threading
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import JSONFileLoader, Loader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The services whose endpoints a session keeps: S3, and STS for credentials from an assumed
# role or a web identity.
_SERVICES = frozenset({"s3", "sts"})


def _without_documentation(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: "" if key == "documentation" else value for key, value in pairs}


class _CompactJSON(JSONFileLoader):
    """botocore's data files parsed into plain dicts, with their documentation text empty.

    botocore parses them into OrderedDicts, text and all: S3's model and endpoint rules
    then hold about 2.5 MiB more in each process, for text only `help()` shows. (The key
    stays, empty: some of it is read when a client is made.)
    """

    def load_file(self, file_path: str) -> Any:
        for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + suffix
            if os.path.isfile(path):
                with opener(path, "rb") as data:
                    return json.loads(data.read(), object_pairs_hook=_without_documentation)
        return None


class _S3Loader(Loader):
    """botocore's data loader, keeping of `endpoints.json` only the entries of `_SERVICES`.

    Every client keeps its session's endpoint data alive: the whole file, every service of
    every partition, is about 7 MiB of Python objects in each serving process, of which S3
    uses a few KiB. Partition-wide defaults stay, so a service without an entry still gets
    the host name botocore would give it.
    """

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        if name != "endpoints":
            found: tuple[Any, str] = super().load_data_with_path(name)
            return found
        # Not the base method: it caches what it parses, and so would keep the whole file.
        for directory in self.search_paths:
            path = os.path.join(directory, name)
            data = self.file_loader.load_file(path)
            if data is not None:
                for partition in data["partitions"]:
                    services = partition.get("services", {})
                    partition["services"] = {k: v for k, v in services.items() if k in _SERVICES}
                return data, path
        raise DataNotFoundError(data_path=name)


# boto3's default session is shared, mutable, global state, so clients come from a session of
# this module's own (a botocore one: boto3's adds its transfer methods, which the stores do not
# use, and 2 MiB of modules). One for all of them: a session parses the S3 service model once
# (tens of milliseconds each time otherwise); creating clients from it is serialised, as
# botocore asks.
_session_lock = threading.Lock()


@functools.cache
def _session() -> botocore.session.Session:
    session = botocore.session.Session()
    data_path = session.get_config_variable("data_path")
    extra = data_path.split(os.pathsep) if data_path else []
    loader = _S3Loader(extra_search_paths=extra, file_loader=_CompactJSON())
    session.register_component("data_loader", loader)
    return session


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
    path_style: bool = True,
    max_attempts: int = 5,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    max_pool_connections: int = 32,
) -> S3Client:
    """A boto3 S3 client that retries with backoff and suits S3-compatible servers.

    Args:
        endpoint_url: The server's URL; None for AWS.
        region: The region to sign requests for.
        access_key_id: None to use boto3's usual credential chain (environment, profile,
            instance role).
        secret_access_key: The secret matching `access_key_id`.
        path_style: Address buckets as `endpoint/bucket/key` (most self-hosted servers
            need this) instead of `bucket.endpoint/key`.
        max_attempts: Tries per request, the first included (botocore's "standard" retry
            mode: exponential backoff with jitter, on throttling, 5xx and network errors).
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for data on a connection.
        max_pool_connections: Connections kept open; at least the number of requests in
            flight at once (reads run several per download).
    """
    config = Config(
        region_name=region,
        # botocore's `max_attempts` counts the retries only; `total_max_attempts` counts
        # every try, as `[storage].max_attempts` does.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        # Every request body is signed by its SHA-256 (x-amz-content-sha256), over HTTPS as
        # over HTTP, so the store refuses a body that arrives altered
        # (XAmzContentSHA256Mismatch): the receipt check of every stored part.
        s3={"payload_signing_enabled": True, "addressing_style": "path" if path_style else "auto"},
        # Since botocore 1.36 every upload carries a CRC checksum by default, which many
        # S3-compatible servers reject or mishandle; only send checksums S3 asks for.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # botocore's client-side check of parameters refuses a part's body given as a
        # memoryview (upload parts are sealed into anonymous mappings, whose pages become
        # resident only as they are written), although every later step sends any
        # bytes-like body as it is; the calls here are typed, and S3 checks what it gets.
        parameter_validation=False,
    )
    with _session_lock:
        client = _session().create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
    return cast("S3Client", client)
