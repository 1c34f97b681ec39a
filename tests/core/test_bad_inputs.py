"""Bad input: every kind of broken or unusual image, mask, model and path gets one clear line and the
rest of the run goes on (cases already covered by test_imageio / test_model / test_export are not repeated)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_demo_model
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.data.imageio import ImageReadError, find_images, read_image


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth picture with some noise (compresses well even when large)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), (x + y) % 256], axis=-1)
    noise = rng.integers(0, 20, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _exif_rotated(path: Path, width: int = 60, height: int = 40) -> None:
    """A JPEG stored landscape (width x height) with EXIF orientation 6: upright it is height x width."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _photo(width, height).save(path, format="JPEG", exif=exif.tobytes())


def _write_good(folder: Path) -> dict[str, tuple[int, int]]:
    """Readable images of every kind -> the (width, height) each predicted mask must have (upright)."""
    folder.mkdir(parents=True, exist_ok=True)
    sub = folder / "sub dir ünï"
    sub.mkdir()
    sizes: dict[str, tuple[int, int]] = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        image.save(folder / name, **kwargs)
        sizes[name] = image.size

    save("plain photo.jpg", _photo(64, 48))
    save("UPPER.JPG", _photo(50, 30), format="JPEG")
    save("Shout.PNG", _photo(33, 21), format="PNG")
    save("webp image.webp", _photo(40, 32), format="WEBP")
    save("WEBP_UPPER.WEBP", _photo(24, 18), format="WEBP")
    save("one pixel.png", _photo(1, 1))
    save("big 4000x3000.jpg", _photo(4000, 3000), quality=70)
    save("cmyk.jpg", _photo(45, 35).convert("CMYK"), format="JPEG")
    save("sixteen.png", Image.fromarray((np.arange(30 * 20).reshape(20, 30) * 100).astype(np.uint16)))
    save("palette.png", _photo(26, 19).convert("P", palette=Image.Palette.ADAPTIVE))
    save("rgba.png", _photo(28, 22).convert("RGBA"))
    save("grey.png", _photo(31, 17).convert("L"))
    save("bitmap.BMP", _photo(20, 12), format="BMP")
    _exif_rotated(folder / "rotated.jpg")
    sizes["rotated.jpg"] = (40, 60)
    _photo(36, 27).save(sub / "naïve 名前.png")
    sizes[f"{sub.name}/naïve 名前.png"] = (36, 27)
    return sizes


def _write_broken(folder: Path) -> dict[str, str]:
    """Unreadable files -> the reason each must be named with."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "random bytes.jpg").write_bytes(np.random.default_rng(1).bytes(4000))
    buffer = io.BytesIO()
    _photo(200, 200).save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "notes.PNG").write_text("this is text with an image extension\n")
    (folder / "fake.webp").write_text("RIFF but not really")
    return {"empty.png": "empty file", "random bytes.jpg": "not an image", "truncated.jpg": "truncated",
            "notes.PNG": "not an image", "fake.webp": "not an image"}


@pytest.mark.parametrize(
    ("name", "image", "kwargs"),
    [
        ("a.webp", _photo(40, 30), {"format": "WEBP"}),
        ("a.WEBP", _photo(40, 30), {"format": "WEBP", "lossless": True}),
        ("one.png", _photo(1, 1), {}),
        ("cmyk.JPEG", _photo(40, 30).convert("CMYK"), {"format": "JPEG"}),
        ("i16.png", Image.fromarray(np.full((30, 40), 40000, np.uint16)), {}),
    ],
)
def test_unusual_readable_images_become_upright_rgb(tmp_path: Path, name: str, image: Image.Image, kwargs) -> None:
    path = tmp_path / name
    image.save(path, **kwargs)
    assert find_images([tmp_path]) == [(path, Path(name))]
    rgb = read_image(path)
    assert rgb.mode == "RGB" and rgb.size == image.size
    if name == "a.WEBP":  # lossless: the pixels survive exactly
        assert np.array_equal(np.asarray(rgb), np.asarray(image))


def test_a_4000x3000_jpeg_is_read_whole(tmp_path: Path) -> None:
    _photo(4000, 3000).save(tmp_path / "big.jpg", quality=70)
    image = read_image(tmp_path / "big.jpg")
    assert image.size == (4000, 3000) and image.mode == "RGB"


def test_exif_rotated_jpeg_is_upright(tmp_path: Path) -> None:
    _exif_rotated(tmp_path / "r.jpg", 60, 40)
    assert read_image(tmp_path / "r.jpg").size == (40, 60)


def test_a_folder_named_like_an_image_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    assert find_images([tmp_path]) == []
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path / "folder.png")


def test_broken_files_are_closed_after_a_failed_read(tmp_path: Path) -> None:
    """A file Pillow opens but cannot decode (truncated) is closed at once, not left to the garbage collector."""
    import gc
    import warnings

    broken = _write_broken(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for name in broken:
            with pytest.raises(ImageReadError):
                read_image(tmp_path / name)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@needs_demo_model
def test_predict_over_a_mixed_folder_names_each_broken_file_and_writes_upright_masks(tmp_path: Path, capsys) -> None:
    """The issue's definition of done: exit 1, each broken file named, a right-sized mask for each good one."""
    src = tmp_path / "in put ä"
    good = _write_good(src)
    broken = _write_broken(src)
    out = tmp_path / "out folder ö"
    code = main(["predict", "--model", "demo", str(src), "--output", str(out), "--batch-size", "4"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("segstudio: ") and str(src) in line]
    assert len(errors) == len(broken), captured.err
    for name, reason in broken.items():
        line = next(line for line in errors if name in line)
        assert reason in line
        assert not (out / Path(name).with_suffix(".png")).exists()
    assert "Traceback" not in captured.err
    for name, size in good.items():
        mask_path = out / Path(name).with_suffix(".png")
        with Image.open(mask_path) as mask:
            assert mask.size == size, name
            assert mask.mode == "L"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == sorted(Path(name).with_suffix(".png").as_posix() for name in good)
    assert f"{len(good)} mask(s) written" in captured.out and f"{len(broken)} failed" in captured.out


@needs_demo_model
def test_predict_with_only_broken_files_writes_no_masks(tmp_path: Path, capsys) -> None:
    broken = _write_broken(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", "--model", "demo", str(tmp_path / "in"), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert all(name in err for name in broken)
    assert list(out.rglob("*.png")) == []


# --- masks -----------------------------------------------------------------------------------------------


def _pairs_with_bad_masks(root: Path) -> None:
    """A pairs folder (2 classes + 'other', reduce_labels) whose validation masks go wrong in every way."""
    rng = np.random.default_rng(3)

    def image(name: str, split: str = "val", size: tuple[int, int] = (24, 16)) -> None:
        path = root / "images" / split / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _photo(*size, seed=len(name)).save(path)

    def mask(name: str, array: np.ndarray, split: str = "val") -> None:
        path = root / "masks" / split / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)

    for name in ("ok.png", "wrong size.png", "colour.png", "stray.png", "no mask.png"):
        image(name)
    mask("ok.png", rng.integers(0, 3, (16, 24)).astype(np.uint8))
    mask("wrong size.png", rng.integers(0, 3, (10, 10)).astype(np.uint8))
    mask("colour.png", rng.integers(0, 256, (16, 24, 3)).astype(np.uint8))
    stray = rng.integers(0, 3, (16, 24)).astype(np.uint8)
    stray[:2, :2] = 9
    mask("stray.png", stray)
    image("t1.png", "test")
    image("t2.png", "test")
    image("a.png", "train")
    mask("a.png", rng.integers(0, 3, (16, 24)).astype(np.uint8), "train")
    (root / "labels.json").write_text(json.dumps({"id2label": {"0": "sky", "1": "tree"}, "reduce_labels": True}))


@pytest.fixture(scope="module")
def bad_masks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad masks") / "pairs ü"
    _pairs_with_bad_masks(root)
    return root


@pytest.fixture(scope="module")
def scratch_two(tmp_path_factory, bad_masks) -> Path:
    """A scratch checkpoint with the folder's two classes, saved so the CLI can load it."""
    from segstudio.core.data.sources import load_source
    from segstudio.core.model.loading import load_model, save_checkpoint

    data = load_source(str(bad_masks))
    loaded = load_model("scratch", label_map=data.label_map, reduce_labels=True, image_size=32)
    folder = tmp_path_factory.mktemp("models") / "two classes"
    save_checkpoint(loaded.model, loaded.processor, loaded.label_map, loaded.convention, folder)
    return folder


def test_each_bad_mask_is_reported_per_image_and_evaluation_counts_what_it_skipped(bad_masks, scratch_two):
    from segstudio.core.data.sources import load_source
    from segstudio.core.evaluation.scoring import evaluate_split
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    data = load_source(str(bad_masks))
    result = evaluate_split(data, "validation", Predictor(load_model(str(scratch_two)), device="cpu"))
    by_name = {Path(image.file_name).name: image for image in result.images}
    assert len(by_name) == 5
    skipped = dict((Path(name).name, reason) for name, reason in result.skipped)
    assert set(skipped) == {"wrong size.png", "colour.png"}
    assert "10x10" in skipped["wrong size.png"] and "24x16" in skipped["wrong size.png"]
    assert "colour" in skipped["colour.png"] or "index mask" in skipped["colour.png"]
    assert by_name["ok.png"].confusion is not None and not by_name["ok.png"].warnings
    stray = by_name["stray.png"]
    assert stray.confusion is not None and stray.confusion.out_of_range == 4  # counted, not clipped
    assert stray.warnings and "9" in stray.warnings[0]
    unannotated = by_name["no mask.png"]
    assert unannotated.confusion is None and unannotated.error is None and unannotated.prediction.shape == (16, 24)


def test_cli_evaluate_names_each_skipped_mask_and_exits_1(bad_masks, scratch_two, tmp_path, capsys):
    out = tmp_path / "m.json"
    code = main(["evaluate", "--dataset", str(bad_masks), "--model", str(scratch_two), "--device", "cpu",
                 "--json", str(out), "--force"])  # the stray mask is a label-check error: refused without it
    err = capsys.readouterr().err
    assert code == 1
    skipped_lines = [line for line in err.splitlines() if line.startswith("segstudio: skipped")]
    assert len(skipped_lines) == 2
    assert any("wrong size.png" in line for line in skipped_lines)
    assert any("colour.png" in line for line in skipped_lines)
    metrics = json.loads(out.read_text())
    warnings = {Path(i["file_name"]).name: i["warnings"] for i in metrics["per_image"]}
    assert warnings["stray.png"] and not warnings["ok.png"]


def test_a_test_split_without_annotations_is_predicted_without_metrics_and_refused_by_evaluate(bad_masks, scratch_two,
                                                                                              capsys):
    """The core predicts it (the window shows the predictions); ``evaluate``, which writes no masks, has nothing to
    score and says so in one line, exit 2, as ``compare`` does, instead of null metrics with exit 0."""
    from segstudio.core.data.sources import load_source
    from segstudio.core.evaluation.scoring import evaluate_split
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.model.loading import load_model

    data = load_source(str(bad_masks))
    assert data.splits["test"]["annotation"] == [None, None]
    result = evaluate_split(data, "test", Predictor(load_model(str(scratch_two)), device="cpu"))
    assert not result.skipped and len(result.images) == 2
    assert all(image.confusion is None and image.prediction is not None for image in result.images)
    assert np.isnan(result.metrics["mean_iou"])
    out = bad_masks.parent / "test-metrics.json"
    code = main(["evaluate", "--dataset", str(bad_masks), "--split", "test", "--model", str(scratch_two),
                 "--device", "cpu", "--json", str(out)])
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("segstudio: error:")]
    assert code == 2 and "test split" in line and "has no masks (2 image(s))" in line and "Traceback" not in err
    assert not out.exists()


# --- models ----------------------------------------------------------------------------------------------


@needs_demo_model
def test_a_model_whose_label_map_disagrees_with_the_dataset_is_one_line_status_2(bad_masks, capsys):
    code = main(["evaluate", "--dataset", str(bad_masks), "--model", "demo", "--device", "cpu"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("segstudio: error:")]
    assert code == 2
    assert len(err) == 1 and "10 classes" in err[0] and "2" in err[0]


def test_a_misspelt_hub_id_offline_is_one_line_status_2(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = main(["predict", "--model", "nvidia/segformer-b0-finetuned-ade-512-512-TYPO", str(tmp_path / "in"),
                 "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("segstudio: error:") and "TYPO" in err[0]


def test_safetensors_are_preferred_over_pickled_weights(tmp_path, scratch_two):
    """With both files present the safetensors are loaded; the pickle (which would run code) is never opened."""
    import shutil

    from segstudio.core.model.loading import load_model

    folder = tmp_path / "both"
    shutil.copytree(scratch_two, folder)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    import torch

    torch.save({"boom": Boom()}, folder / "pytorch_model.bin")
    loaded = load_model(str(folder))
    assert loaded.label_map.num_labels == 2


def test_pickled_weights_are_loaded_with_weights_only(tmp_path, scratch_two):
    """A pickle that would run code is refused (weights_only=True), as one line, and runs nothing."""
    import shutil

    import torch

    from segstudio.core.model.loading import ModelLoadError, load_model

    folder = tmp_path / "pickled"
    shutil.copytree(scratch_two, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "executed"

    class Boom:
        def __reduce__(self):
            return (Path.write_text, (marker, "yes"))

    torch.save({"boom": Boom()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder))
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_remote_code_is_never_trusted(tmp_path, scratch_two):
    import shutil

    from segstudio.core.model.loading import ModelLoadError, load_model

    folder = tmp_path / "remote"
    shutil.copytree(scratch_two, folder)
    marker = tmp_path / "executed"
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('yes')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSemanticSegmentation": "custom.Model", "AutoConfig": "custom.Config"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        loaded = load_model(str(folder))
    except ModelLoadError:
        loaded = None
    assert not marker.exists()
    if loaded is not None:
        assert loaded.model.__class__.__module__.startswith("transformers.")


# --- paths -----------------------------------------------------------------------------------------------


def test_outputs_never_leave_the_chosen_folder(tmp_path: Path) -> None:
    from segstudio.core.export.writers import ExportError, plan_outputs

    out = tmp_path / "out"
    for relative in (Path("../escape.jpg"), Path("a/../../b.jpg"), Path("/abs/c.jpg")):
        with pytest.raises(ExportError, match="would leave"):
            plan_outputs([(tmp_path / "x.jpg", relative)], out, ["index"])
    assert not out.exists() and not (tmp_path / "escape.png").exists()
