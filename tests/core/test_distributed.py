"""`segstudio train` under torchrun: two CPU processes (gloo) leave one loadable checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from transformers import SegformerForSemanticSegmentation

from segstudio.core.data.demo_dataset import demo_label_map


@pytest.mark.slow
def test_torchrun_two_processes_train_and_save(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "SEGSTUDIO_CACHE": os.environ.get(
        "SEGSTUDIO_CACHE", os.path.expanduser("~/.cache/segstudio"))}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "segstudio",
         "train", "--dataset", "demo", "--model", "demo", "--max-steps", "4", "--batch-size", "2",
         "--image-size", "64", "--eval-limit", "4", "--output", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = SegformerForSemanticSegmentation.from_pretrained(out / "final")
    assert model.config.id2label == demo_label_map().id2label
    assert (out / "checkpoint-4").is_dir()
    # Only rank 0 reports: the final line appears once.
    assert proc.stdout.count("model saved to") == 1
