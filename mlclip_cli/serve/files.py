"""Which files `GET /image/{path}` may send, and their thumbnails.

Only images the index lists, and only where they really lie inside the collection's root: a path
with `..`, `.` or an absolute path is refused before any lookup; a listed path is resolved
(symlinks followed) and must still be inside the resolved root. So neither a crafted URL nor a
symlink planted in the collection reaches a file outside it, and an unlisted file inside the
folder is not served either.
"""

from __future__ import annotations

import io
import mimetypes
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mlclip_cli.collection import Index
from mlclip_cli.errors import MlclipError
from mlclip_cli.images import TAR_SEPARATOR, open_image
from mlclip_cli.serve.errors import RequestError

THUMBNAIL_CACHE = 512  # thumbnails kept (a few KiB each)


@dataclass(frozen=True)
class ImageFile:
    path: Path  # the file on disk (a tar shard for a webdataset member)
    media_type: str
    member: bool  # a member of a tar shard: sent decoded and re-encoded, never the shard


def _check_shape(path: str) -> None:
    if not path or "\x00" in path or "\\" in path:
        raise RequestError(400, f"image path {path!r}: not a path of this index")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise RequestError(400, f"image path {path!r}: absolute paths are not served (use the url a search returned)")
    if any(part in ("..", ".") for part in path.split(TAR_SEPARATOR, 1)[0].split("/")):
        raise RequestError(400, f"image path {path!r}: '..' and '.' are not allowed (use the url a search returned)")


def image_file(index: Index, path: str) -> ImageFile:
    """The file behind `path` when it is an image of the index inside its root; else a RequestError."""
    _check_shape(path)
    try:
        listed = index.resolve(path)
    except MlclipError:
        raise RequestError(404, f"image path {path!r}: not an image of this index") from None
    if index.root is None:
        raise RequestError(404, f"image path {path!r}: the index records no collection folder")
    member = TAR_SEPARATOR in path
    on_disk = Path(str(listed).split(TAR_SEPARATOR, 1)[0]) if member else listed
    root = os.path.realpath(index.root)
    real = os.path.realpath(on_disk)
    if os.path.commonpath([root, real]) != root:
        raise RequestError(403, f"image path {path!r}: resolves outside the collection folder; not served")
    if not os.path.isfile(real):
        raise RequestError(404, f"image path {path!r}: the file is gone from the collection folder")
    media_type = "image/jpeg" if member else (mimetypes.guess_type(real)[0] or "application/octet-stream")
    return ImageFile(Path(real), media_type, member)


class Thumbnails:
    """JPEG thumbnails (the longer side at most `pixels`), made once and kept in a small LRU."""

    def __init__(self, pixels: int, max_source_pixels: int, size: int = THUMBNAIL_CACHE):
        self.pixels, self.max_source_pixels, self.size = pixels, max_source_pixels, size
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, file: ImageFile, path: str, thumbnail: bool) -> bytes:
        stat = file.path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size, thumbnail)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        data = self._make(file, path, thumbnail)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return data

    def _make(self, file: ImageFile, path: str, thumbnail: bool) -> bytes:
        try:
            if file.member:
                image = open_image(f"{file.path}{TAR_SEPARATOR}{path.split(TAR_SEPARATOR, 1)[1]}")
            else:
                image = Image.open(file.path)
                if image.width * image.height > self.max_source_pixels:
                    raise RequestError(413, f"image path {path!r}: {image.width}x{image.height} pixels is too large "
                                            "to make a thumbnail of")
                image.draft("RGB", (self.pixels, self.pixels))  # JPEG: decode at a fraction of the size
                image = image.convert("RGB")
        except (OSError, MlclipError) as exc:
            if isinstance(exc, RequestError):
                raise
            raise RequestError(422, f"image path {path!r}: cannot be decoded ({exc})") from None
        if thumbnail:
            image.thumbnail((self.pixels, self.pixels))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()
