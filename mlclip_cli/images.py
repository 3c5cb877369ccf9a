"""Open manifest images, whether plain files or members of webdataset tar shards."""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from mlclip_cli.errors import MlclipError

TAR_SEPARATOR = "::"


@functools.lru_cache(maxsize=4)
def _open_shard(tar_path: str) -> tarfile.TarFile:
    """An open shard with its member index read once: a shard's images are read in one pass over
    it, not one scan of the archive per image (a few shards stay open: rows come shard by shard)."""
    tar = tarfile.open(tar_path)
    tar.getmembers()
    return tar


def open_image(image_path: str) -> Image.Image:
    """The RGB image at a manifest `image_path` (`file` or `shard.tar::member`)."""
    try:
        if TAR_SEPARATOR in image_path:
            tar_path, member = image_path.split(TAR_SEPARATOR, 1)
            handle = _open_shard(tar_path).extractfile(member)
            if handle is None:
                raise MlclipError(f"{image_path}: not a file in the shard")
            image = Image.open(handle)
            image.load()
        else:
            image = Image.open(Path(image_path))
            image.load()
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise MlclipError(f"cannot read image {image_path}: {_why(exc)}") from None
    return image.convert("RGB")


def _why(exc: Exception) -> str:
    """What is wrong, in words rather than an errno line or the exception's repr."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not an image file"
    if isinstance(exc, KeyError):
        return "no such member in the shard"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image (no format PIL can decode)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else "unreadable"


def load_uint8(paths: list[str], size: int) -> np.ndarray:
    """Images as an [n, size, size, 3] uint8 array (resized when they are not `size` already)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        image = open_image(path)
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BICUBIC)
        out[i] = np.asarray(image)
    return out
