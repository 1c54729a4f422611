"""Parsing multipart/form-data as it streams: the limits of a form, the boundary, the events
of each part, and the part headers (name, file name, media type).

`web.multipart_upload` pulls these events and stores the files; nothing here buffers more
than one body chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from vault.errors import IncompleteUploadError
from web.errors import ProblemError

MULTIPART = "multipart/form-data"
MAX_TEXT_FIELD = 16 * 1024  # bytes of one text field
MAX_TEXT_TOTAL = 64 * 1024  # bytes of all text fields together
MAX_FIELDS = 64  # parts of any kind, files included
MAX_FILES = 1000
MAX_PART_HEADERS = 8
MAX_PART_HEADER_SIZE = 8 * 1024  # a long non-Latin file name, percent-free, fits
MAX_CONTENT_TYPE = 100

# WHATWG HTML, "multipart/form-data encoding algorithm": a browser writes `"`, CR and LF of
# a file name as %22, %0D and %0A, and nothing else.
_NAME_ESCAPES = (("%22", '"'), ("%0D", "\r"), ("%0A", "\n"))


# Events, in order for each part: ("begin", b""), ("header", b"Name: value") for each header,
# ("body", b""), ("data", bytes) for each piece, ("end", b"").
Event = tuple[str, bytes]


def boundary_of(request: Request) -> bytes:
    media, params = parse_options_header(request.headers.get("content-type", ""))
    if media.decode("latin-1") != MULTIPART:
        raise ProblemError(415, "Unsupported media type", f"send {MULTIPART}")
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:  # RFC 2046 §5.1.1
        raise ProblemError(400, "Bad request", "the multipart boundary is missing or too long")
    return boundary


async def events(request: Request, boundary: bytes) -> AsyncGenerator[Event, None]:
    """The body's parts as events, parsed as each chunk arrives.

    Raises:
        IncompleteUploadError: the body ended (or the client went away) before its end.
    """
    queue: list[Event] = []
    field_name = bytearray()
    field_value = bytearray()
    finished = False

    def on_part_begin() -> None:
        queue.append(("begin", b""))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        field_value.extend(data[start:end])

    def on_header_end() -> None:
        queue.append(("header", bytes(field_name) + b":" + bytes(field_value)))
        field_name.clear()
        field_value.clear()

    def on_headers_finished() -> None:
        queue.append(("body", b""))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if end > start:
            queue.append(("data", data[start:end]))

    def on_part_end() -> None:
        queue.append(("end", b""))

    def on_end() -> None:
        nonlocal finished
        finished = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
        max_header_count=MAX_PART_HEADERS,
        max_header_size=MAX_PART_HEADER_SIZE,
    )
    try:
        async for chunk in request.stream():
            if not chunk or finished:
                continue  # the epilogue after the closing boundary is ignored (RFC 2046)
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise ProblemError(400, "Bad request", "the multipart body is malformed") from None
            events, queue[:] = list(queue), []
            for event in events:
                yield event
    except ClientDisconnect:
        raise IncompleteUploadError("the browser went away before the form was complete") from None
    if not finished:
        raise IncompleteUploadError("the form ended before its closing boundary")


@dataclass(slots=True)
class Part:
    name: str = ""
    filename: str | None = None
    content_type: str | None = None


def part_headers(headers: list[bytes]) -> Part:
    part = Part()
    for raw in headers:
        key, _, value = raw.partition(b":")
        key_name = key.strip().lower()
        # Browsers send the names of fields and files as raw UTF-8 (WHATWG HTML); latin-1
        # keeps each byte as it is until the parameters are split.
        text = value.strip().decode("latin-1")
        if key_name == b"content-disposition":
            kind, params = parse_options_header(text)
            if kind != b"form-data":
                raise ProblemError(400, "Bad request", "a part is not form-data")
            part.name = utf8(params.get(b"name", b""))
            if b"filename" in params:
                filename = utf8(params[b"filename"])
                for escaped, char in _NAME_ESCAPES:
                    filename = filename.replace(escaped, char)
                part.filename = filename
        elif key_name == b"content-type":
            part.content_type = media_type(text)
    return part


def utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(400, "Bad request", "a part's name is not UTF-8") from None


def media_type(value: str) -> str | None:
    media = value.split(";")[0].strip().lower()
    if not media or len(media) > MAX_CONTENT_TYPE or media.count("/") != 1:
        return None
    if media == "application/octet-stream":
        return None
    if not all(c.isalnum() or c in "!#$&^_.+-/" for c in media):
        return None
    return media
