"""``segstudio review-report`` over the ADE20K devkit's own validation samples, a review record and corrections."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli.entry import main
from segstudio.core.data.sources import load_source
from segstudio.core.review.corrections import CorrectionsStore
from segstudio.core.review.record import ReviewRecord

REPO = Path(__file__).resolve().parents[2]
DEVKIT = REPO / "tests" / "fixtures" / "ade20k-devkit"


@pytest.fixture
def ade_root(tmp_path) -> Path:
    """ADEChallengeData2016 holding the devkit's three validation images and annotations."""
    root = tmp_path / "ADEChallengeData2016"
    for path in sorted(DEVKIT.glob("ADE_val_*")):
        kind = "images" if path.suffix == ".jpg" else "annotations"
        (root / kind / "validation").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / kind / "validation" / path.name)
    for name in ("objectInfo150.txt", "sceneCategories.txt"):
        shutil.copyfile(DEVKIT / name, root / name)
    return root


@pytest.fixture
def reviewed(ade_root, tmp_path) -> tuple[Path, list[str], int]:
    """A corrections folder: image 1 accepted, image 2 needing a fix with a corrected mask, image 3 untouched.
    Returns the folder, the file names and how many pixels the correction changed (counted here with NumPy)."""
    names = [str(n) for n in load_source(str(ade_root)).splits["validation"]["file_name"]]
    folder = tmp_path / "corrections"
    with ReviewRecord(folder) as record:
        record.update("validation", names[0], status="accepted", tags=["clean"])
        record.update("validation", names[1], status="needs_fix", tags=["sky", "occluded"], note="=1+1 wall edge")
    original = np.asarray(Image.open(ade_root / "annotations" / "validation" / "ADE_val_00000002.png"))
    corrected = original.copy()
    corrected[10:60, 20:90] = 7  # "road" in the release's ids
    CorrectionsStore(folder, str(ade_root)).save("validation", names[1], corrected, original)
    return folder, names, int(np.count_nonzero(corrected != original))


@pytest.mark.slow
def test_review_report_lists_statuses_notes_and_changed_pixels(ade_root, reviewed, tmp_path):
    folder, names, changed = reviewed
    json_path, csv_path = tmp_path / "out" / "review.json", tmp_path / "out" / "review.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "segstudio", "review-report", "--dataset", str(ade_root),
                           "--corrections", str(folder), "--json", str(json_path), "--csv", str(csv_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "validation: 2 of 3 reviewed (accepted 1, needs fix 1); 1 corrected" in done.stdout
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file_name"] for row in rows] == names
    assert [row["status"] for row in rows] == ["accepted", "needs_fix", "unreviewed"]
    assert rows[1]["tags"] == "occluded, sky" and rows[1]["note"] == "'=1+1 wall edge"  # never run as a formula
    assert [row["changed_pixels"] for row in rows] == ["", str(changed), ""] and changed > 0
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["splits"]["validation"] == {"images": 3, "reviewed": 2, "unreviewed": 1, "accepted": 1,
                                                "needs_fix": 1, "fixed": 0}
    assert document["images"][1]["tags"] == ["occluded", "sky"] and document["images"][1]["note"] == "=1+1 wall edge"
    assert document["images"][1]["changed_pixels"] == changed


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segstudio: error:"), err
    return err[0]


def test_a_missing_or_empty_corrections_folder_is_one_line(ade_root, tmp_path, capsys):
    args = ["review-report", "--dataset", str(ade_root), "--corrections"]
    assert main([*args, str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in _one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main([*args, str(tmp_path / "empty")]) == 2
    assert "holds no review record and no corrections" in _one_error_line(capsys)
    assert list((tmp_path / "empty").iterdir()) == []  # reading made no record


def test_the_review_of_another_dataset_is_refused(ade_root, tmp_path, capsys):
    with ReviewRecord(tmp_path / "other") as record:
        record.update("validation", "images/validation/somewhere_else.jpg", status="accepted")
    assert main(["review-report", "--dataset", str(ade_root), "--corrections", str(tmp_path / "other")]) == 2
    assert "another dataset" in _one_error_line(capsys)


def test_a_file_of_yours_in_the_way_is_refused_and_kept(ade_root, reviewed, tmp_path, capsys):
    mine = tmp_path / "notes.csv"
    mine.write_text("my own notes\n")
    assert main(["review-report", "--dataset", str(ade_root), "--corrections", str(reviewed[0]),
                 "--csv", str(mine)]) == 2
    assert "already exists" in _one_error_line(capsys)
    assert mine.read_text() == "my own notes\n"
