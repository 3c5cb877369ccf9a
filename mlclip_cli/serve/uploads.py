"""An uploaded query image: its bytes read under a size limit, its pixels under a pixel limit.

The body is counted while it arrives (a Content-Length over the limit is refused before reading,
a body that runs past it is cut off), so an over-size upload never sits in memory or on disk
whole. The image's header gives its size before anything is decoded, so a small file that would
decode to a huge bitmap is refused too.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from mlclip_cli.serve.errors import RequestError

MULTIPART_SLACK = 64 * 1024  # room for the multipart headers and boundaries around the file


def size_text(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count:,} bytes"


async def read_body(receive_stream, content_length: str | None, limit: int) -> bytes:
    """The whole body from `receive_stream` (an async iterator of chunks), at most `limit` bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise RequestError(400, f"Content-Length {content_length!r} is not a number") from None
        if declared > limit:
            raise RequestError(413, f"upload: {size_text(declared)} is over the limit of {size_text(limit)}")
    chunks, total = [], 0
    async for chunk in receive_stream:
        total += len(chunk)
        if total > limit:
            raise RequestError(413, f"upload: over the limit of {size_text(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """The RGB image in `data`, or a RequestError: empty, not an image, or too many pixels."""
    if not data:
        raise RequestError(400, "image: the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise RequestError(413, f"image: {width}x{height} is {width * height:,} pixels; at most {max_pixels:,}")
            image.load()
            return image.convert("RGB")
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(413, f"image: too many pixels ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's ways of saying "not an image I can read"
        raise RequestError(400, f"image: not an image file PIL can read ({type(exc).__name__})") from None
