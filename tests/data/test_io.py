"""Image reading: stored pixels for annotated data, EXIF orientation on request, corrupt files named."""

import numpy as np
import pytest
from PIL import Image

from hrnet.data.io import DataError, read_image, read_image_info, read_mask


def _tagged_jpeg(path, orientation: int, size=(320, 240)):
    """A JPEG whose stored pixels are `size` (W, H) with a left-dark / right-bright ramp, tagged `orientation`."""
    ramp = np.tile(np.linspace(0, 255, size[0], dtype=np.uint8), (size[1], 1))
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.stack([ramp] * 3, axis=2)).save(path, quality=95, exif=exif)
    return path


def test_annotated_data_is_read_as_stored_and_photos_as_displayed(tmp_path):
    """Orientation 6 ("rotate 90 CW to display"): the official pose loader reads with
    IMREAD_IGNORE_ORIENTATION, so a 320x240 stored image stays 240 rows x 320 columns."""
    path = _tagged_jpeg(tmp_path / "tagged.jpg", 6)
    stored = read_image(path)
    assert stored.shape == (240, 320, 3)
    shown, info = read_image_info(path, exif=True)
    assert shown.shape == (320, 240, 3)
    assert info.exif_orientation == 6 and info.orientation_applied
    assert "orientation 6 applied" in info.coordinates
    # Rotated clockwise: the stored left column (dark) becomes the displayed top row.
    assert shown[0].mean() < 30 and shown[-1].mean() > 225
    np.testing.assert_array_equal(shown, np.rot90(stored, k=-1))
    assert "not applied" in read_image_info(path)[1].coordinates


def test_a_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    path = _tagged_jpeg(tmp_path / "whole.jpg", 1, size=(640, 480))
    truncated = tmp_path / "t.jpg"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DataError, match=r"t\.jpg cannot be decoded .*truncated"):
        read_image(truncated)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="text.png cannot be decoded"):
        read_image(tmp_path / "text.png")
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_other_modes_become_rgb(tmp_path, mode):
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 256 + 7)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 9)]))
    else:
        image = Image.fromarray(grey).convert(mode)
    image.save(tmp_path / "x.png")
    rgb, info = read_image_info(tmp_path / "x.png")
    assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8 and info.converted
    np.testing.assert_array_equal(rgb[..., 1], grey)


def test_masks_keep_indices_and_refuse_values_above_255(tmp_path):
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    palette = Image.fromarray(labels, mode="L").convert("P")
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), labels)
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "wide.png")
    with pytest.raises(DataError, match=r"wide\.png .*0\.\.300"):
        read_mask(tmp_path / "wide.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png has 3 channels"):
        read_mask(tmp_path / "rgb.png")
