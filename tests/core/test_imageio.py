"""Image and mask reading edge cases, and finding image files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.data.imageio import IMAGE_EXTENSIONS, ImageReadError, find_images, read_image, read_mask


def photo(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def test_empty_random_and_truncated_files_fail_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "noise.jpg")
    data = jpeg_bytes(photo(256, 256))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "1", "LA"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    source = photo().convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    source.save(path)
    image = read_image(path)
    assert image.mode == "RGB" and image.size == (64, 48)


def test_rgba_keeps_colours_and_palette_maps_through_palette(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.asarray(read_image(tmp_path / "a.png"))[0, 0].tolist() == [200, 0, 0]
    palette = Image.new("P", (3, 3))
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((1, 1), 1)
    palette.save(tmp_path / "p.png")
    assert np.asarray(read_image(tmp_path / "p.png"))[1, 1].tolist() == [10, 20, 30]


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    pixels = np.asarray(read_image(tmp_path / "deep.png"))
    assert pixels[0, :, 0].tolist() == [0, 100, 255]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "r.jpg").write_bytes(jpeg_bytes(photo(64, 48), exif=exif))
    assert read_image(tmp_path / "r.jpg").size == (48, 64)


def test_read_mask_modes(tmp_path: Path) -> None:
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(ids, "L").save(tmp_path / "l.png")
    assert np.array_equal(read_mask(tmp_path / "l.png"), ids)
    palette = Image.fromarray(ids, "L").convert("P")
    palette.putpalette(np.random.default_rng(2).integers(0, 256, 768).tolist())
    palette.save(tmp_path / "p.png")
    assert np.array_equal(read_mask(tmp_path / "p.png"), np.asarray(palette))
    wide = np.array([[0, 300], [1000, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    mask = read_mask(tmp_path / "w.png")
    assert mask.dtype == np.uint16 and np.array_equal(mask, wide)
    Image.fromarray(np.stack([ids] * 3, -1), "RGB").save(tmp_path / "grey.png")
    assert np.array_equal(read_mask(tmp_path / "grey.png"), ids)


def test_colour_mask_is_refused_with_an_explanation(tmp_path: Path) -> None:
    photo(8, 8).save(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match="index masks are expected"):
        read_mask(tmp_path / "colour.png")


def test_find_images(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in [
        "b.JPG",
        "a.png",
        "sub/c.TIFF",
        "sub/deeper/d.webp",
        "notes.txt",
        ".hidden/e.png",
        "._f.jpg",
    ]:
        (folder / name).write_bytes(b"x")
    single = tmp_path / "single.Jpeg"
    single.write_bytes(b"x")
    found = find_images([folder, single, folder / "a.png"])
    assert [rel.as_posix() for _, rel in found] == [
        "a.png",
        "b.JPG",
        "sub/c.TIFF",
        "sub/deeper/d.webp",
        "single.Jpeg",
    ]
    assert found[2][0] == folder / "sub" / "c.TIFF"
    assert find_images([folder]) == found[:4]  # deterministic
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"} == set(IMAGE_EXTENSIONS)
    with pytest.raises(ImageReadError, match="no such file or folder"):
        find_images([tmp_path / "nope"])


def test_sixteen_bit_images_are_scaled_by_one_rule_wherever_they_are_read(tmp_path: Path) -> None:
    """predict (a file), a dataset cell (evaluate, compare, the window) and the training transform agree:
    v * 255 / 65535, rounded, where Pillow's own convert("RGB") would clip everything above 255 to white."""
    from transformers import SegformerImageProcessor

    from segstudio.core.labels.label_map import LabelConvention
    from segstudio.core.training.transforms import SegmentationTransform

    values = np.array([[0, 1000, 30000, 65535]] * 4, dtype=np.uint16)
    expected = [0, 4, 117, 255]
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert np.asarray(Image.open(tmp_path / "deep.png").convert("RGB"))[0, :, 0].tolist() == [0, 255, 255, 255]
    cell = {"bytes": (tmp_path / "deep.png").read_bytes(), "path": "deep.png"}
    for source in (tmp_path / "deep.png", cell, {"bytes": None, "path": str(tmp_path / "deep.png")}):
        pixels = np.asarray(read_image(source))
        assert pixels[0, :, 0].tolist() == expected and np.array_equal(pixels[..., 0], pixels[..., 2])
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "mask.png")
    processor = SegformerImageProcessor(do_rescale=False, do_normalize=False, resample=Image.Resampling.NEAREST)
    transform = SegmentationTransform(processor, LabelConvention(reduce_labels=False), 4, augment=False)
    batch = transform({"image": [cell], "annotation": [{"bytes": None, "path": str(tmp_path / "mask.png")}],
                       "file_name": ["deep.png"]})
    assert batch["pixel_values"][0, :, 0].round().int().tolist() == [expected] * 3


def test_masks_from_files_and_dataset_cells_are_read_alike(tmp_path: Path) -> None:
    wide = np.array([[0, 300], [1000, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    cell = {"bytes": (tmp_path / "w.png").read_bytes(), "path": "w.png"}
    assert np.array_equal(read_mask(cell), wide) and read_mask(cell).dtype == np.uint16
    photo(8, 8).save(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match="^c.png: a colour"):
        read_mask({"bytes": (tmp_path / "colour.png").read_bytes(), "path": "c.png"})
    with pytest.raises(ImageReadError, match="2x2 pixels but its image is 3x2"):
        read_mask(cell, (3, 2))


def test_a_jpeg_mask_is_refused_whatever_its_name(tmp_path: Path) -> None:
    """JPEG changes the ids along every edge (here ids that were 0 / 3 / 7 only come back as others), so such a
    mask would be scored with ids it never held; a JPEG named .png is still a JPEG."""
    ids = np.zeros((32, 32), np.uint8)
    ids[8:24, 8:24], ids[12:20, 12:20] = 3, 7
    buffer = io.BytesIO()
    Image.fromarray(ids).save(buffer, format="JPEG")
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    assert set(np.unique(decoded).tolist()) - {0, 3, 7}  # what a reader of this file would score
    (tmp_path / "mask.png").write_bytes(buffer.getvalue())
    for source in (tmp_path / "mask.png", {"bytes": buffer.getvalue(), "path": "mask.jpg"}):
        with pytest.raises(ImageReadError, match="a JPEG mask"):
            read_mask(source)
