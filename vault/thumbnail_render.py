"""Drawing a thumbnail from a version's plaintext, in memory: Pillow for images, PDFium for
the first page of a PDF. Blocking and CPU-bound, so `vault.thumbnails` runs it in a worker
thread; nothing here touches the disk or the database.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault.errors import ThumbnailError

if TYPE_CHECKING:
    from PIL import Image

# Pillow and PDFium are imported by the functions that draw, on a process's first thumbnail:
# together about 7 MiB that a server which never draws one (or draws them in another
# process) need not hold.

# The long side of a thumbnail, in pixels: a 128 px box on a screen with twice the density.
SIZE = 256
# The image formats we decode, by Pillow's name, and the media types that lead to them. An
# upload's media type comes from its name, so Pillow is told which decoders it may use:
# nothing else (EPS would start Ghostscript, some formats run old, rarely audited decoders).
IMAGE_TYPES: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
}
PDF_TYPE = "application/pdf"
MEDIA_TYPES = frozenset({*IMAGE_TYPES, PDF_TYPE})
OUTPUT_TYPE = "image/webp"

# PDFium keeps global state and is not thread-safe (pypdfium2's documentation says so):
# one render at a time per process.
_pdfium_lock = threading.Lock()
_bomb_filter_lock = threading.Lock()
_bomb_filter_set = False


@dataclass(frozen=True, slots=True)
class Rendered:
    """A thumbnail's encoded bytes and its pixel size."""

    data: bytes
    media_type: str
    width: int
    height: int


def thumbnailable(content_type: str) -> bool:
    """Whether a version of this media type can have a thumbnail."""
    return content_type in MEDIA_TYPES


def _refuse_bombs() -> None:
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a warning would let a
    # decompression bomb (a few KiB that inflate to gigabytes) through. Set once per process:
    # the filter list is shared by every thread.
    from PIL import Image

    global _bomb_filter_set
    with _bomb_filter_lock:
        if not _bomb_filter_set:
            warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
            _bomb_filter_set = True


def render(data: bytes, content_type: str) -> Rendered:
    """Draw the thumbnail of a version whose plaintext is `data`.

    Raises:
        ThumbnailError: the type has no thumbnail, or the file cannot be drawn safely
            (damaged, encrypted, or more pixels than Pillow's `MAX_IMAGE_PIXELS`).
    """
    if content_type == PDF_TYPE:
        image = _first_page(data)
    elif content_type in IMAGE_TYPES:
        image = _image(data, IMAGE_TYPES[content_type])
    else:
        raise ThumbnailError(f"no thumbnail for {content_type}")
    return _encode(image)


def _image(data: bytes, form: str) -> Image.Image:
    from PIL import Image, ImageOps, UnidentifiedImageError

    _refuse_bombs()
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data), formats=[form]) as opened:
            # Open only reads the header; refuse before a pixel is decoded.
            width, height = opened.size
            if limit is not None and width * height > limit:
                raise ThumbnailError(f"{width}x{height} pixels is more than allowed")
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far less memory and time.
            opened.draft("RGB", (SIZE * 2, SIZE * 2))
            opened.seek(0)  # an animation shows its first frame
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
            return _displayable(image)
    except ThumbnailError:
        raise
    except (
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,  # some decoders report a malformed file as a SyntaxError
        EOFError,
    ) as exc:
        raise ThumbnailError(f"the image cannot be drawn: {exc}") from exc


def _first_page(data: bytes) -> Image.Image:
    import pypdfium2 as pdfium

    with _pdfium_lock:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:  # damaged, or protected by a password
            raise ThumbnailError(f"the PDF cannot be opened: {exc}") from exc
        try:
            if len(pdf) == 0:
                raise ThumbnailError("the PDF has no page")
            page = pdf[0]
            try:
                width, height = page.get_size()
                longest = max(width, height)
                if not longest > 0:
                    raise ThumbnailError("the first page has no size")
                # Scaled to the thumbnail's size whatever the page's: a crafted /MediaBox
                # cannot make the bitmap large.
                bitmap = page.render(scale=SIZE / longest, may_draw_forms=False)
                try:
                    image = bitmap.to_pil().copy()
                finally:
                    bitmap.close()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise ThumbnailError(f"the PDF's first page cannot be drawn: {exc}") from exc
        finally:
            pdf.close()
    return _displayable(image)


def _displayable(image: Image.Image) -> Image.Image:
    # WebP holds RGB or RGBA; palette, CMYK, 16-bit and the rest are converted first.
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode(image: Image.Image) -> Rendered:
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=80, method=4)
    return Rendered(out.getvalue(), OUTPUT_TYPE, image.width, image.height)
