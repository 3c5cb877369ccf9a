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
