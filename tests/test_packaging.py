"""A plain, non-editable install carries everything the app needs at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_has_label_map_and_demo_model(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(wheel_dir.glob("segstudio-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "segstudio/resources/ade20k-150.json" in names
    assert "segstudio/resources/models/segformer-b0-demo/model.safetensors" in names
    assert "segstudio/resources/models/segformer-b0-demo/preprocessor_config.json" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    code = (
        "import segstudio, pathlib;"
        "from segstudio.core.labels import LabelMap;"
        "from segstudio.core.model.location import DEMO_MODEL_DIR;"
        "assert LabelMap.ade20k().num_labels == 150;"
        "assert pathlib.Path(str(DEMO_MODEL_DIR), 'model.safetensors').is_file();"
        "print(segstudio.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout
    command = subprocess.run([str(target / "bin" / "segstudio"), "--version"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=120)  # the console script's entry point resolves
    assert command.returncode == 0 and command.stdout.startswith("segstudio "), command.stderr
