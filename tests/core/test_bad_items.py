"""One bad image or mask in a dataset never sinks a run: evaluate, compare, train and the window skip it, name it
once and count it. The bad items are real bad files in an ADE20K folder written by ``segstudio demo-data``."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_demo_model
from PIL import Image

from segstudio.cli.entry import main

KEEP = 8  # rows kept per split: the first five made bad, three good
GOOD = KEEP - 5


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid PNG header declaring 400 Mpx (over twice Pillow's MAX_IMAGE_PIXELS), with almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\0" * 100)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _make_bad(root: Path, folder: str) -> dict[str, str]:
    """Keep the first KEEP rows of a split and spoil five of them; stem -> what each was made."""
    images, masks = root / "images" / folder, root / "annotations" / folder
    stems = sorted(p.stem for p in images.glob("*.jpg"))
    for stem in stems[KEEP:]:
        (images / f"{stem}.jpg").unlink()
        (masks / f"{stem}.png").unlink(missing_ok=True)
    bad = stems[:5]
    (images / f"{bad[0]}.jpg").write_bytes(bomb_png())
    data = (images / f"{bad[1]}.jpg").read_bytes()
    (images / f"{bad[1]}.jpg").write_bytes(data[: len(data) // 2])
    (images / f"{bad[2]}.jpg").write_text("not an image, only named like one\n")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(masks / f"{bad[3]}.png")
    (masks / f"{bad[4]}.png").write_bytes(bomb_png())
    return dict(zip(bad, ["decompression bomb", "truncated", "not an image", "1x1", "decompression bomb"],
                    strict=True))


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, str]]:
    root = tmp_path_factory.mktemp("bad") / "ade"
    assert main(["demo-data", str(root)]) == 0
    shutil.rmtree(root / "images" / "testing")
    return root, _make_bad(root, "validation"), _make_bad(root, "training")


def _named_once(stderr: str, bad: dict[str, str]) -> None:
    for stem, kind in bad.items():
        lines = [line for line in stderr.splitlines() if stem in line]
        assert len(lines) == 1, (stem, stderr)
        assert kind.split()[-1] in lines[0], lines[0]
        assert "Traceback" not in stderr


def test_bad_files_fail_the_reader_with_one_line(bad_folder) -> None:
    from segstudio.core.data.imageio import ImageReadError, read_image, read_mask

    root, bad, _ = bad_folder
    stems = list(bad)
    for stem in stems[:3]:
        with pytest.raises(ImageReadError) as caught:
            read_image(root / "images" / "validation" / f"{stem}.jpg")
        assert "\n" not in str(caught.value) and str(caught.value).startswith(str(root))
    with pytest.raises(ImageReadError, match=r"more than 89 million pixels \(Pillow's decompression bomb guard\): "
                                              "downscale or tile the image first"):
        read_mask({"bytes": bomb_png(), "path": "m.png"})
    with pytest.raises(ImageReadError, match="1x1 pixels but its image is 256x256"):
        read_mask(root / "annotations" / "validation" / f"{stems[3]}.png", (256, 256))


@needs_demo_model
def test_evaluate_skips_names_and_counts_each_bad_item(bad_folder, tmp_path: Path, capsys) -> None:
    root, bad, _ = bad_folder
    out = tmp_path / "metrics.json"
    code = main(["evaluate", "--dataset", str(root), "--model", "demo", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    _named_once(captured.err, bad)
    assert f"images scored: {GOOD}   skipped: 5" in captured.out
    document = json.loads(out.read_text())
    assert sorted(Path(item["file_name"]).stem for item in document["skipped"]) == sorted(bad)
    counts = json.loads((tmp_path / "manifest.json").read_text())["counts"]
    assert counts == {"images": KEEP, "written": GOOD, "skipped": 5}


@needs_demo_model
def test_compare_skips_names_and_counts_each_bad_item(bad_folder, tmp_path: Path, capsys) -> None:
    root, bad, _ = bad_folder
    out = tmp_path / "compare.json"
    code = main(["compare", "--dataset", str(root), "--model", "demo", "--model", "demo", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    _named_once(captured.err, bad)
    assert f"images compared: {GOOD}   skipped: 5" in captured.out
    document = json.loads(out.read_text())
    assert len(document["per_image"]) == GOOD
    assert sorted(Path(item["file_name"]).stem for item in document["skipped"]) == sorted(bad)


def test_the_training_transform_leaves_bad_rows_out(bad_folder) -> None:
    from transformers import SegformerImageProcessor

    from segstudio.core.data.sources import SourceOptions, load_source
    from segstudio.core.training.transforms import SegmentationTransform

    root, _, bad = bad_folder
    dataset = load_source(str(root), SourceOptions())
    transform = SegmentationTransform(SegformerImageProcessor(), dataset.convention, 32, augment=True)
    rows = transform.apply_to(dataset.splits["train"])
    batch = rows[0:KEEP]
    assert batch["pixel_values"].shape == (GOOD, 3, 32, 32) and batch["labels"].shape == (GOOD, 32, 32)
    assert sorted(Path(name).stem for name in transform.skipped) == sorted(bad)
    only_bad = rows[0:5]  # nothing readable: one wholly ignored image, which the trainer's guard skips
    assert only_bad["pixel_values"].shape == (1, 3, 32, 32)
    assert bool((only_bad["labels"] == dataset.convention.ignore_index).all())
    assert len(transform.skipped) == 5  # each named once, however often it is met


@needs_demo_model
@pytest.mark.slow
def test_train_skips_names_and_counts_each_bad_item(bad_folder, tmp_path: Path, capsys) -> None:
    root, bad_val, bad_train = bad_folder
    code = main(["train", "--dataset", str(root), "--model", "demo", "--output", str(tmp_path / "run"),
                 "--epochs", "1", "--batch-size", "4", "--image-size", "32", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    _named_once(captured.err, {**bad_train, **bad_val})
    assert "10 unreadable item(s) left out of training" in captured.err
    assert (tmp_path / "run" / "final" / "config.json").is_file()


def test_the_window_reads_a_bad_row_as_one_clear_line(bad_folder) -> None:
    from segstudio.core.data.imageio import ImageReadError
    from segstudio.core.data.sources import SourceOptions, load_source
    from segstudio.gui.controllers.sources import SplitSource

    root, bad, _ = bad_folder
    source = SplitSource(load_source(str(root), SourceOptions()), "validation")
    for index in range(3):
        for read in (source.image, lambda i: source.thumbnail(i, 64)):
            with pytest.raises(ImageReadError) as caught:
                read(index)
            assert "\n" not in str(caught.value)
    with pytest.raises(ImageReadError, match="decompression bomb"):
        source.ground_truth(4)
    with pytest.raises(ImageReadError, match="1x1 pixels but its image is 256x256"):
        source.ground_truth(3, (256, 256))
    assert source.image(KEEP - 1).size == (256, 256) and source.ground_truth(KEEP - 1).shape == (256, 256)
    assert source.thumbnail(KEEP - 1, 64).shape == (64, 64, 3)


def test_a_truncated_jpeg_cell_in_memory_is_named(tmp_path: Path) -> None:
    from segstudio.core.data.imageio import ImageReadError, read_image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="JPEG")
    with pytest.raises(ImageReadError, match="^x.jpg: truncated"):
        read_image({"bytes": buffer.getvalue()[:300], "path": "x.jpg"})


def test_colour_and_overlay_in_row_blocks_equal_the_whole_image_formula(monkeypatch) -> None:
    """Blocks of a few rows give the pixels of the one-shot blend (image * (1 - a) + colour * a, rounded)."""
    from segstudio.core.labels import render

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)
    ids = rng.integers(0, 160, (37, 50)).astype(np.uint16)
    ids[::7, ::3] = 255
    palette = rng.integers(0, 256, (150, 3), dtype=np.uint8)
    table = np.zeros((256, 3), np.uint8)
    table[:150] = palette
    colours = table[np.where(ids < 150, ids, 255)]
    expected = np.clip(np.rint(image.astype(np.float32) * 0.6 + colours.astype(np.float32) * 0.4), 0, 255)
    expected = np.where((ids == 255)[..., None], image, expected).astype(np.uint8)
    monkeypatch.setattr(render, "BLOCK_PIXELS", 120)  # two rows a block, the last one short
    assert len(list(render.row_blocks(37, 50))) == 19
    assert np.array_equal(render.colorize(ids, palette), colours)
    assert np.array_equal(render.overlay(image, ids, palette, alpha=0.4), expected)


def test_an_overlay_needs_little_memory_beyond_its_output(monkeypatch) -> None:
    import tracemalloc

    from segstudio.core.labels import render

    image = np.full((1000, 1200, 3), 90, np.uint8)
    ids = np.tile(np.arange(1200, dtype=np.uint16) % 150, (1000, 1))
    palette = np.arange(450, dtype=np.uint16).reshape(150, 3).astype(np.uint8)
    monkeypatch.setattr(render, "BLOCK_PIXELS", 1 << 14)
    tracemalloc.start()
    try:
        out = render.overlay(image, ids, palette)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A few float32 copies of one block beyond the output; the whole-image blend needed 4x the output per copy.
    assert peak < out.nbytes + 64 * render.BLOCK_PIXELS < 2 * out.nbytes


def test_running_out_of_memory_is_one_line_and_exit_2(monkeypatch, capsys) -> None:
    import segstudio.cli.commands as commands

    def no_memory(_spec):
        raise MemoryError

    monkeypatch.setattr(commands, "_check_model_spec", no_memory)
    assert main(["evaluate", "--dataset", "demo", "--model", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segstudio: error: out of memory") and err.count("\n") == 1


@pytest.mark.parametrize("palette", [[[300, 0, 0]], [[-1, 0, 0]], [[1e30, 0, 0]], [[1.5, 0, 0]], [[0, 0]], "red"])
def test_a_label_map_palette_out_of_range_is_one_line(bad_folder, tmp_path: Path, palette, capsys) -> None:
    root = bad_folder[0]
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"id2label": {str(i): f"c{i}" for i in range(150)}, "palette": palette}))
    assert main(["evaluate", "--dataset", str(root), "--label-map", str(path), "--model", "demo"]) == 2
    err = capsys.readouterr().err
    assert "palette" in err and str(path) in err and err.count("\n") == 1


def test_a_deeply_nested_label_map_is_one_line(bad_folder, tmp_path: Path, capsys) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert main(["evaluate", "--dataset", str(bad_folder[0]), "--label-map", str(path), "--model", "demo"]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and err.count("\n") == 1


@needs_demo_model
def test_the_window_scores_a_split_with_bad_items_and_lists_them(bad_folder) -> None:
    """The window's evaluation job streams every row: the good ones scored, each bad one with its one-line reason."""
    import threading
    from types import SimpleNamespace

    from segstudio.core.data.sources import SourceOptions, load_source
    from segstudio.gui.controllers.sources import SplitSource
    from segstudio.gui.workers import jobs

    root, bad, _ = bad_folder
    dataset = load_source(str(root), SourceOptions())
    source = SplitSource(dataset, "validation")
    updates = []
    ctx = SimpleNamespace(progress=updates.append, cancel_event=threading.Event(), cancelled=False)
    outcome = jobs.evaluate_source(ctx, source, jobs.load_model_bundle("demo", dataset, "cpu"))
    streamed = {o.index: o for update in updates for o in update.outcomes}
    assert not outcome.cancelled and outcome.done == KEEP and len(streamed) == KEEP
    assert sorted(Path(name).stem for name, _ in outcome.skipped) == sorted(bad)
    assert all("\n" not in reason and "Traceback" not in reason for _, reason in outcome.skipped)
    assert sum(o.confusion is not None for o in streamed.values()) == GOOD
    assert sum(o.error is not None for o in streamed.values()) == 5


@needs_demo_model
def test_compare_where_every_row_is_bad_names_them_rather_than_a_missing_ground_truth(bad_folder, capsys) -> None:
    root, bad, _ = bad_folder
    code = main(["compare", "--dataset", str(root), "--model", "demo", "--model", "demo", "--limit", "3"])
    captured = capsys.readouterr()
    assert code == 1 and "no ground truth" not in captured.err
    _named_once(captured.err, dict(list(bad.items())[:3]))
