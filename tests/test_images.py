import io
import tarfile

import pytest
from PIL import Image

from mlclip_cli.errors import MlclipError
from mlclip_cli.images import TAR_SEPARATOR, load_uint8, open_image


def test_open_image_from_a_file_and_from_a_webdataset_shard(tmp_path):
    Image.new("RGB", (8, 6), (200, 10, 10)).save(tmp_path / "a.jpg")
    buffer = io.BytesIO()
    Image.new("L", (5, 5), 90).save(buffer, format="PNG")
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        info = tarfile.TarInfo("000000001.png")
        info.size = len(buffer.getvalue())
        tar.addfile(info, io.BytesIO(buffer.getvalue()))
    assert open_image(str(tmp_path / "a.jpg")).size == (8, 6)
    grey = open_image(f"{tmp_path / '00000.tar'}{TAR_SEPARATOR}000000001.png")
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (90, 90, 90)
    pixels = load_uint8([str(tmp_path / "a.jpg")], 4)
    assert pixels.shape == (1, 4, 4, 3) and pixels[0, 2, 2, 0] > 150


def test_unreadable_images_are_one_line_errors(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(MlclipError, match="cannot read image"):
        open_image(str(tmp_path / "bad.jpg"))
    with pytest.raises(MlclipError, match="cannot read image"):
        open_image(f"{tmp_path / 'missing.tar'}{TAR_SEPARATOR}x.jpg")


def test_images_of_one_webdataset_shard_are_read_with_one_open_of_the_archive(tmp_path, monkeypatch):
    import io
    import tarfile

    from PIL import Image

    from mlclip_cli import images

    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for i in range(20):
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"{i:09d}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    images._open_shard.cache_clear()
    pixels = images.load_uint8([f"{shard}::{i:09d}.png" for i in range(20)], 8)
    assert len(opened) == 1
    assert [int(p[0, 0, 0]) for p in pixels] == [i * 10 for i in range(20)]
