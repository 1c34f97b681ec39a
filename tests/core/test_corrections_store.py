"""The corrections store: masks saved beside a dataset, read back as saved, and never half written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.review.corrections import CorrectionsError, CorrectionsStore


def _masks(seed: int = 0, shape=(24, 32), top: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    original = rng.integers(0, top, shape, dtype=np.uint8)
    corrected = original.copy()
    corrected[2:9, 3:15] = 7
    return original, corrected


def test_save_and_load_round_trip_as_an_index_png(tmp_path: Path) -> None:
    original, corrected = _masks()
    store = CorrectionsStore(tmp_path / "fixes", dataset="demo")
    item = store.save("validation", "images/validation/ADE_val_00000001.jpg", corrected, original)
    assert item.changed_pixels == int(np.count_nonzero(corrected != original))
    png = tmp_path / "fixes" / "validation" / "images" / "validation" / "ADE_val_00000001.png"
    with Image.open(png) as image:  # an index mask any tool reads: 8-bit grey, ids as they are
        assert image.mode == "L"
        assert np.array_equal(np.asarray(image), corrected)
    again = CorrectionsStore(tmp_path / "fixes")
    assert np.array_equal(again.load("validation", "images/validation/ADE_val_00000001.jpg"), corrected)
    assert again.load("validation", "other.jpg") is None
    assert again.dataset == "demo"
    assert [i.file_name for i in again.items("validation")] == ["images/validation/ADE_val_00000001.jpg"]
    index = json.loads((tmp_path / "fixes" / "corrections.json").read_text())
    entry = index["items"]["validation"]["images/validation/ADE_val_00000001.jpg"]
    assert entry["changed_pixels"] == item.changed_pixels and len(entry["original_sha256"]) == 64


def test_sixteen_bit_ids_are_kept(tmp_path: Path) -> None:
    original = np.full((8, 8), 300, np.uint16)
    corrected = original.copy()
    corrected[0, 0] = 40000
    store = CorrectionsStore(tmp_path)
    store.save("train", "a.png", corrected, original)
    with Image.open(tmp_path / "train" / "a.png") as image:
        assert image.mode.startswith("I")
    loaded = CorrectionsStore(tmp_path).load("train", "a.png")
    assert loaded.dtype == np.uint16 and np.array_equal(loaded, corrected)


def test_a_mask_of_another_size_is_refused(tmp_path: Path) -> None:
    original, corrected = _masks()
    store = CorrectionsStore(tmp_path)
    with pytest.raises(CorrectionsError, match="32x24"):
        store.save("validation", "a.jpg", corrected[:, :-1], original)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["../escape.jpg", "/etc/passwd", "a/../../b.jpg", "", "..", "a\\..\\b.jpg",
                                  "C:/x.jpg", ".hidden.jpg", "a/\x00.jpg"])
def test_paths_that_would_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    original, corrected = _masks()
    store = CorrectionsStore(tmp_path / "fixes")
    with pytest.raises(CorrectionsError):
        store.save("validation", name, corrected, original)
    assert not (tmp_path / "fixes").exists() or not any((tmp_path / "fixes").rglob("*.png"))
    assert not (tmp_path / "escape.png").exists()


def test_a_link_out_of_the_folder_is_never_read(tmp_path: Path) -> None:
    original, corrected = _masks()
    CorrectionsStore(tmp_path / "fixes").save("validation", "a.jpg", corrected, original)
    index_path = tmp_path / "fixes" / "corrections.json"
    index = json.loads(index_path.read_text())
    (tmp_path / "fixes" / "validation" / "a.png").rename(tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", tmp_path / "fixes" / "validation" / "link.png")
    index["items"]["validation"]["a.jpg"]["mask"] = "validation/link.png"
    index_path.write_text(json.dumps(index))
    store = CorrectionsStore(tmp_path / "fixes")
    assert store.load("validation", "a.jpg") is None and not store.items()
    with pytest.raises(CorrectionsError, match="out of"):
        store._target("validation/link.png")


def test_a_kill_between_the_mask_and_the_index_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    original, corrected = _masks()
    store = CorrectionsStore(tmp_path)
    store.save("validation", "a.jpg", original, original)

    def killed(self, index):  # the process dies after the mask's rename, before the index is written
        raise KeyboardInterrupt

    monkeypatch.setattr(CorrectionsStore, "_write_index", killed)
    with pytest.raises(KeyboardInterrupt):
        store.save("validation", "a.jpg", corrected, original)
    with pytest.raises(KeyboardInterrupt):
        store.save("validation", "b.jpg", corrected, original)
    monkeypatch.undo()
    reopened = CorrectionsStore(tmp_path)
    assert np.array_equal(reopened.load("validation", "a.jpg"), corrected)
    assert np.array_equal(reopened.load("validation", "b.jpg"), corrected)
    b = {i.file_name: i for i in reopened.items()}["b.jpg"]
    assert b.changed_pixels == int(np.count_nonzero(corrected != original))


def test_digest_follows_the_content(tmp_path: Path) -> None:
    original, corrected = _masks()
    store = CorrectionsStore(tmp_path)
    empty = store.digest()
    store.save("validation", "a.jpg", corrected, original)
    first = store.digest()
    store.save("validation", "a.jpg", corrected, original)
    assert store.digest() == first != empty  # the same content, saved again: the same digest
    store.save("validation", "a.jpg", original, original)
    assert store.digest() != first
    assert store.remove("validation", "a.jpg") and store.digest() == empty
    assert not (tmp_path / "validation" / "a.png").exists()


def test_a_folder_of_another_dataset_is_not_written_into(tmp_path: Path) -> None:
    original, corrected = _masks()
    CorrectionsStore(tmp_path, dataset="/data/a").save("validation", "a.jpg", corrected, original)
    with pytest.raises(CorrectionsError, match="/data/a"):
        CorrectionsStore(tmp_path, dataset="/data/b").save("validation", "b.jpg", corrected, original)


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from segstudio.core.review.corrections import CorrectionsStore
    store = CorrectionsStore(sys.argv[1])
    original = np.zeros((400, 600), np.uint8)
    print("ready", flush=True)
    for step in range(100000):
        mask = np.full(original.shape, step % 200, np.uint8)
        store.save("validation", f"img{step % 3}.jpg", mask, original)
""")


@pytest.mark.slow
def test_killing_a_writer_mid_save_leaves_a_store_that_loads(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for delay in (0.35, 0.6, 0.9):
        folder = tmp_path / f"store-{delay}"
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)], stdout=subprocess.PIPE, env=env)
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        store = CorrectionsStore(folder)
        items = store.items("validation")
        assert items, "the writer saved nothing before it was killed"
        for item in items:
            mask = store.load("validation", item.file_name)
            assert mask.shape == (400, 600) and len(np.unique(mask)) == 1  # a whole mask, never a torn one
        json.loads((folder / "corrections.json").read_text())
        store.digest()
