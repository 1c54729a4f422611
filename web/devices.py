"""What a signed-in session's browser is, in words a person recognises ("Chrome on Linux"),
from its User-Agent header, parsed with the maintained uap-core rules (ua-parser)."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Device:
    browser: str  # "Chrome", "Firefox"…; empty when the header names none we know
    system: str  # "Linux", "Mac OS X", "iOS"…; empty when unknown


@functools.lru_cache(maxsize=1024)
def device(user_agent: str | None) -> Device:
    if not user_agent:
        return Device("", "")
    # The rules (with PyYAML) load on the first header parsed: about 5 MiB that a process
    # serving only the API never needs.
    from ua_parser import parse

    parsed = parse(user_agent[:512])
    browser = parsed.user_agent.family if parsed.user_agent is not None else ""
    system = parsed.os.family if parsed.os is not None else ""
    return Device("" if browser == "Other" else browser, "" if system == "Other" else system)
