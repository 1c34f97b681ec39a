"""Several processes (torchrun / accelerate launch): `train` leaves one loadable checkpoint; `evaluate`, `compare`,
`label-issues` and `predict` split the images between processes and give what one process gives, same files, same
exit statuses; a failure on one process is named by the others instead of leaving them waiting."""

from __future__ import annotations

import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerForSemanticSegmentation

from segstudio.cli.entry import main
from segstudio.core.data.demo_dataset import demo_label_map
from segstudio.core.evaluation.distributed import (
    DistributedError,
    Ranks,
    launched_ranks,
    merge_comparisons,
    merge_evaluations,
)
from segstudio.core.model.location import DEMO_MODEL_DIR

needs_demo_model = pytest.mark.skipif(
    not (Path(str(DEMO_MODEL_DIR)) / "config.json").exists(), reason="demo model not trained yet"
)
LIMIT = 7  # images scored: 4 on rank 0, 3 on rank 1
BROKEN = 1  # the image made unreadable: index 1, which rank 1 of 2 scores


def _env(**extra: str) -> dict[str, str]:
    cache = os.environ.get("SEGSTUDIO_CACHE", os.path.expanduser("~/.cache/segstudio"))
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "SEGSTUDIO_CACHE": cache, **extra}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "segstudio",
         *args], capture_output=True, text=True, env=_env(), timeout=600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_two_ranks(command: list[str]) -> list[subprocess.Popen]:
    """``command`` started twice as torchrun starts it (RANK, WORLD_SIZE, MASTER_ADDR...)."""
    port = str(_free_port())
    return [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
        MASTER_PORT=port, SEGSTUDIO_DIST_TIMEOUT="300")) for rank in range(2)]


def _two_ranks(command: list[str]) -> list[subprocess.CompletedProcess]:
    """``command`` run as two ranks: each rank's own status and output."""
    procs = _start_two_ranks(command)
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


# --- ranks and shards ----------------------------------------------------------------------------------------------


def test_ranks_come_from_the_launchers_environment():
    assert launched_ranks({}) == Ranks(0, 1, 0)
    assert launched_ranks({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Ranks(3, 4, 1)
    for bad in ({"WORLD_SIZE": "two"}, {"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "0"}):
        with pytest.raises(DistributedError):
            launched_ranks(bad)


@pytest.mark.parametrize("count", [0, 1, 7, 48, 2001])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_the_samplers_without_its_padding(count, world):
    """torch's DistributedSampler (no shuffle) deals images the same way but pads short shards with repeats."""
    shards = [list(Ranks(rank, world).shard(count)) for rank in range(world)]
    assert sorted(index for shard in shards for index in shard) == list(range(count))
    for rank, shard in enumerate(shards):
        dealt = list(torch.utils.data.DistributedSampler(range(count), world, rank, shuffle=False)) if count else []
        assert shard == dealt[: len(shard)]
        assert len(dealt) - len(shard) == (1 if count and count % world and rank >= count % world else 0)


# --- merging shards in one process (the results pickled as the exchange pickles them) ------------------------------


@pytest.fixture(scope="module")
def demo():
    from segstudio.core.data.sources import load_source

    return load_source("demo")


@pytest.fixture(scope="module")
def demo_model():
    from segstudio.core.model.loading import load_model

    return load_model("demo")


def _sent(value):
    return pickle.loads(pickle.dumps(value))


def _image_rows(result) -> list[tuple]:
    return [(i.index, i.file_name, i.scene, i.error, i.warnings,
             None if i.confusion is None else i.confusion.dense().tolist()) for i in result.images]


@needs_demo_model
def test_two_shards_merge_into_the_one_process_evaluation(demo, demo_model, one_torch_thread):
    from segstudio.core.evaluation.scoring import evaluate_split
    from segstudio.core.inference.predictor import Predictor

    predictor = Predictor(demo_model, device="cpu")
    alone = evaluate_split(demo, "validation", predictor, limit=LIMIT, keep_predictions=False)
    parts = [_sent(evaluate_split(demo, "validation", predictor, limit=LIMIT, keep_predictions=False,
                                  shard=(rank, 2))) for rank in range(2)]
    assert [len(p.images) for p in parts] == [4, 3]
    merged = merge_evaluations(parts)
    assert np.array_equal(merged.matrix, alone.matrix)
    assert np.array_equal(merged.images_per_class, alone.images_per_class)
    assert json.dumps(merged.metrics, default=list) == json.dumps(alone.metrics, default=list)
    assert _image_rows(merged) == _image_rows(alone)
    assert merged.class_rows() == alone.class_rows()
    assert json.dumps(merged.by_scene(), default=list) == json.dumps(alone.by_scene(), default=list)


@pytest.mark.slow
@needs_demo_model
def test_two_shards_merge_into_the_one_process_comparison_and_label_issues(demo, demo_model, one_torch_thread):
    from segstudio.core.evaluation.compare import compare_split
    from segstudio.core.inference.predictor import Predictor
    from segstudio.core.review.label_issues import collect_split, file_names, merge_collectors, scan_split

    model_b = copy.deepcopy(demo_model)
    with torch.no_grad():  # B never predicts "person", so it breaks pixels A had right
        model_b.model.decode_head.classifier.bias[7] = -1e4
    a, b = Predictor(demo_model, device="cpu"), Predictor(model_b, device="cpu")
    alone = compare_split(demo, "validation", a, b, limit=LIMIT)
    merged = merge_comparisons([_sent(compare_split(demo, "validation", a, b, limit=LIMIT, shard=(rank, 2)))
                                for rank in range(2)])
    assert merged.to_json_dict(demo.label_map) == alone.to_json_dict(demo.label_map)
    assert any(image.broken for image in merged.images)

    _result, report = scan_split(demo, "validation", a, limit=LIMIT)
    parts = [_sent(collect_split(demo, "validation", a, limit=LIMIT, shard=(rank, 2))) for rank in range(2)]
    names = file_names(merge_evaluations([result for result, _ in parts]))
    shared = merge_collectors([collector for _, collector in parts]).report(names)
    # thresholds are sums of float probabilities: the shards add them in another order (last-digit rounding)
    np.testing.assert_allclose(shared.thresholds, report.thresholds, rtol=1e-12)
    assert [(i.index, i.suspected, i.labelled, i.pairs) for i in shared.images] == \
        [(i.index, i.suspected, i.labelled, i.pairs) for i in report.images]
    np.testing.assert_allclose([i.score for i in shared.images], [i.score for i in report.images], rtol=1e-9)


# --- a failure on one process ----------------------------------------------------------------------------------------

FAILING_RANK = textwrap.dedent("""
    import sys
    from segstudio.core.evaluation.distributed import DistributedError, launched_ranks, process_group

    ranks = launched_ranks()

    def work():
        if ranks.rank == 1:
            raise ValueError("row 7 cannot be read")
        return ranks.rank

    try:
        with process_group(ranks) as group:
            group.each(work)
    except DistributedError as exc:
        print(exc, exc.exit_status)
        sys.exit(3)
    except ValueError:
        sys.exit(4)
""")


@pytest.mark.slow
def test_an_exception_on_one_process_is_named_by_the_others_not_waited_for():
    rank0, rank1 = _two_ranks([sys.executable, "-c", FAILING_RANK])
    assert (rank0.returncode, rank1.returncode) == (3, 4), rank0.stderr[-2000:] + rank1.stderr[-2000:]
    assert rank0.stdout.strip() == "process 1 of 2 stopped: ValueError: row 7 cannot be read 1"


# --- the command line under torchrun ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spoiled_demo(tmp_path_factory) -> tuple[Path, str]:
    """The demo as an ADE20K folder whose validation image at index BROKEN is cut in half (a truncated JPEG)."""
    root = tmp_path_factory.mktemp("dist") / "ade"
    assert main(["demo-data", str(root)]) == 0
    broken = sorted((root / "images" / "validation").glob("*.jpg"))[BROKEN]
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    return root, broken.stem


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _manifest(folder: Path) -> dict:
    """manifest.json without its time, the output folder's name written OUT."""
    manifest = json.loads((folder / "manifest.json").read_text().replace(str(folder), "OUT"))
    manifest.pop("created_utc")
    return manifest


@pytest.mark.slow
@needs_demo_model
def test_torchrun_evaluate_gives_the_one_process_files_and_status(spoiled_demo, tmp_path, capsys):
    root, broken = spoiled_demo
    common = ["evaluate", "--dataset", str(root), "--model", "demo", "--limit", str(LIMIT), "--batch-size", "2"]
    one, two = tmp_path / "one", tmp_path / "two"
    code = main([*common, "--json", str(one / "m.json"), "--csv", str(one / "m.csv")])
    alone = capsys.readouterr()
    proc = _torchrun(*common, "--json", str(two / "m.json"), "--csv", str(two / "m.csv"))
    assert (code, proc.returncode) == (1, 1), proc.stderr[-3000:]
    assert json.loads((two / "m.json").read_text()) == json.loads((one / "m.json").read_text())
    assert (two / "m.csv").read_bytes() == (one / "m.csv").read_bytes()
    assert _manifest(two) == _manifest(one)
    assert _files(two) == _files(one) == [".segstudio-export.json", "m.csv", "m.json", "manifest.json"]
    # rank 0 alone prints the results and names the unreadable image once, as one process does
    assert proc.stdout.count("images scored: 6   skipped: 1") == 1
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("segstudio: skipped")]
    assert skipped == [line for line in alone.err.splitlines() if line.startswith("segstudio: skipped")]
    assert len(skipped) == 1 and broken in skipped[0]


@pytest.mark.slow
@needs_demo_model
def test_accelerate_launch_evaluate_gives_the_one_process_files(spoiled_demo, tmp_path, capsys):
    root, broken = spoiled_demo
    common = ["evaluate", "--dataset", str(root), "--model", "demo", "--limit", str(LIMIT), "--batch-size", "2"]
    code = main([*common, "--json", str(tmp_path / "one.json")])
    capsys.readouterr()
    # --multi_gpu on a machine without GPUs: accelerate starts the processes through torchrun, which use gloo
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
         str(_free_port()), "-m", "segstudio", *common, "--json", str(tmp_path / "two.json")],
        capture_output=True, text=True, env=_env(), timeout=600)
    assert (code, proc.returncode) == (1, 1), proc.stderr[-3000:]
    assert json.loads((tmp_path / "two.json").read_text()) == json.loads((tmp_path / "one.json").read_text())
    assert proc.stdout.count("images scored: 6   skipped: 1") == 1  # rank 0 alone reports
    assert "| 0/4 [" in proc.stderr  # rank 0's progress counts its own shard: 4 of the 7 images


@pytest.mark.slow
@needs_demo_model
def test_two_processes_compare_and_rank_label_issues_as_one_process(spoiled_demo, tmp_path, capsys):
    root, broken = spoiled_demo
    data = ["--dataset", str(root), "--limit", "5", "--batch-size", "2"]
    runs = {"compare": ["compare", *data, "--model", "demo", "--model", "demo"],
            "label-issues": ["label-issues", *data, "--model", "demo", "--top", "3"]}
    for name, command in runs.items():
        code = main([*command, "--json", str(tmp_path / f"{name}-one.json")])
        alone = capsys.readouterr()
        ranks = _two_ranks([sys.executable, "-m", "segstudio", *command, "--json", str(tmp_path / f"{name}-two.json")])
        assert [rank.returncode for rank in ranks] == [code, code] == [1, 1], ranks[0].stderr[-3000:]
        assert ranks[0].stdout == alone.out and ranks[1].stdout == ""
        one, two = (json.loads((tmp_path / f"{name}-{n}.json").read_text()) for n in ("one", "two"))
        if name == "label-issues":  # scores and thresholds: sums of probabilities in another order
            for document in (one, two):
                for image in document["images"]:
                    image["score"] = round(image["score"], 9)
                document["thresholds"] = {k: round(v, 9) for k, v in document["thresholds"].items() if v is not None}
        assert two == one
        assert sum(broken in line for rank in ranks for line in rank.stderr.splitlines()) == 1


@pytest.mark.slow
@needs_demo_model
def test_two_processes_predict_the_one_process_masks_into_one_export(spoiled_demo, tmp_path, capsys):
    root, broken = spoiled_demo
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((root / "images" / "validation").glob("*.jpg"))[:5]:
        (images / path.name).write_bytes(path.read_bytes())
    Image.fromarray(np.full((30, 50, 3), 90, np.uint8)).save(images / "sub.png")
    common = ["predict", "--model", "demo", str(images), "--format", "index", "--format", "color"]
    one, two = tmp_path / "one", tmp_path / "two"
    code = main([*common, "--output", str(one)])
    alone = capsys.readouterr()
    ranks = _two_ranks([sys.executable, "-m", "segstudio", *common, "--output", str(two)])
    assert [rank.returncode for rank in ranks] == [code, code] == [1, 1], ranks[0].stderr[-3000:]
    assert _files(two) == _files(one)
    for name in _files(one):
        if name not in ("manifest.json", ".segstudio-export.json"):
            assert (two / name).read_bytes() == (one / name).read_bytes(), name
    assert _manifest(two) == _manifest(one)
    assert ranks[0].stdout == alone.out.replace(str(one), str(two)) and ranks[1].stdout == ""
    named = [line for rank in ranks for line in rank.stderr.splitlines() if broken in line]
    assert len(named) == 1 and named == [line for line in alone.err.splitlines() if broken in line]


@pytest.mark.slow
@needs_demo_model
def test_a_process_that_dies_leaves_the_others_stopping_and_no_files(spoiled_demo, tmp_path):
    root, _broken = spoiled_demo
    out = tmp_path / "out"
    command = [sys.executable, "-m", "segstudio", "predict", "--model", "demo", str(root / "images" / "validation"),
               "--output", str(out)]
    procs = _start_two_ranks(command)
    while procs[0].poll() is None and not list(out.glob(".segstudio-staging-*")):
        time.sleep(0.05)  # rank 0 holds the staging folder: every rank is predicting
    procs[1].kill()
    _out, err = procs[0].communicate(timeout=600)
    procs[1].communicate(timeout=60)
    assert procs[0].returncode == 2, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("segstudio: error: process 0 of 2 lost the others")
    assert not out.exists()  # the export was staged only: nothing is left behind


@pytest.mark.slow
def test_a_usage_error_gives_every_process_the_one_process_status(tmp_path):
    ranks = _two_ranks([sys.executable, "-m", "segstudio", "evaluate", "--dataset", "demo", "--model", "demo",
                        "--limit", "2", "--cross-check"])
    assert [rank.returncode for rank in ranks] == [2, 2]
    for rank in ranks:
        lines = rank.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("segstudio: error: --cross-check runs in one process")


@pytest.mark.slow
def test_torchrun_two_processes_train_and_save(tmp_path):
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "segstudio",
         "train", "--dataset", "demo", "--model", "demo", "--max-steps", "4", "--batch-size", "2",
         "--image-size", "64", "--eval-limit", "4", "--output", str(out)],
        capture_output=True, text=True, env=_env(), timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = SegformerForSemanticSegmentation.from_pretrained(out / "final")
    assert model.config.id2label == demo_label_map().id2label
    assert (out / "checkpoint-4").is_dir()
    # Only rank 0 reports: the final line appears once.
    assert proc.stdout.count("model saved to") == 1
