"""Training options as run_semantic_segmentation.py users know them: each reaches transformers' TrainingArguments,
a checkpoint's training_options.json repeats its run, the seed makes runs identical, gradient accumulation counts
optimizer steps as Trainer does, and bad options or config files are one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file
from transformers import SchedulerType, TrainingArguments

from segstudio.cli import main
from segstudio.core.data import SegDataset, make_demo
from segstudio.core.training import options as training_options
from segstudio.core.training import transforms
from segstudio.core.training.options import (
    OPTIONS_FILE,
    OptionError,
    read_options_file,
    read_training_options,
    write_options_file,
)
from segstudio.core.training.trainer import (
    TrainingError,
    TrainSettings,
    _training_arguments,
    model_to_train,
    settings_for,
    train,
)

CPU = torch.device("cpu")
CHOSEN = {  # every option away from its default
    "max_steps": 3, "batch_size": 2, "learning_rate": 3e-4, "image_size": 32, "device": "cpu", "eval_limit": 1,
    "eval_steps": 100, "save_steps": 2,
    "seed": 7, "logging_steps": 1, "weight_decay": 0.05, "gradient_accumulation_steps": 2, "warmup_steps": 0.5,
    "lr_scheduler_type": "cosine", "augmentation": "flip-crop-color", "save_total_limit": 1,
}
# the same choices under TrainingArguments' own names: the reference they must reach
AS_TRAINING_ARGUMENTS = {
    "max_steps": 3, "per_device_train_batch_size": 2, "learning_rate": 3e-4, "seed": 7, "logging_steps": 1,
    "eval_strategy": "steps", "eval_steps": 100, "save_steps": 2,
    "weight_decay": 0.05, "gradient_accumulation_steps": 2, "warmup_steps": 0.5,
    "lr_scheduler_type": SchedulerType.COSINE, "dataloader_num_workers": 0,
}
RUN_SPECIFIC = {"output_dir", "logging_dir", "run_name"}


def _saved_arguments(folder: Path) -> TrainingArguments:
    """The TrainingArguments Trainer itself saved with a checkpoint (training_args.bin)."""
    return torch.load(folder / "training_args.bin", weights_only=False)


def _comparable(args: TrainingArguments) -> dict:
    return {key: value for key, value in args.to_dict().items() if key not in RUN_SPECIFIC}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """A 3-step run on the demo with every option chosen; its final checkpoint."""
    from segstudio.core.data import load_source

    out = tmp_path_factory.mktemp("reference") / "run"
    dataset = load_source("demo")
    settings = TrainSettings(output_dir=out, **CHOSEN)
    result = train(dataset, model_to_train("demo", dataset, settings), settings)
    return result.final_checkpoint


def test_every_option_is_checked_and_named_as_in_train_settings() -> None:
    names = {item.name for item in dataclasses.fields(TrainSettings)} - {"output_dir", "resume"}
    assert set(training_options.CHECKS) == names
    assert set(training_options.SCHEDULERS) <= {item.value for item in SchedulerType}
    assert training_options.AUGMENTATIONS == transforms.AUGMENTATIONS
    assert training_options.check_options(TrainSettings(output_dir=Path("x")).record(), "defaults")


def test_the_options_reach_training_arguments_as_transformers_names_them() -> None:
    args = _training_arguments(TrainSettings(output_dir=Path("out"), **CHOSEN), CPU, has_eval=True)
    reference = TrainingArguments(output_dir="out", **AS_TRAINING_ARGUMENTS)
    for name in AS_TRAINING_ARGUMENTS:
        assert getattr(args, name) == getattr(reference, name), name
    tensorboard = _training_arguments(TrainSettings(output_dir=Path("out"), report_to="tensorboard",
                                                    dataloader_num_workers=3), CPU, has_eval=False)
    assert tensorboard.report_to == TrainingArguments(output_dir="out", report_to="tensorboard").report_to
    assert tensorboard.dataloader_num_workers == 3


@pytest.mark.slow
def test_a_real_run_saves_its_options_and_trainer_used_them(reference_run: Path) -> None:
    used = _saved_arguments(reference_run)
    reference = TrainingArguments(output_dir="out", **AS_TRAINING_ARGUMENTS)
    for name in AS_TRAINING_ARGUMENTS:
        assert getattr(used, name) == getattr(reference, name), name
    recorded = json.loads((reference_run / OPTIONS_FILE).read_text())
    assert {key: recorded[key] for key in CHOSEN} == CHOSEN
    assert read_training_options(reference_run) == recorded
    checkpoints = list(reference_run.parent.glob("checkpoint-*"))
    assert len(checkpoints) == 1  # save_total_limit 1
    for checkpoint in checkpoints:
        assert json.loads((checkpoint / OPTIONS_FILE).read_text()) == recorded


@pytest.mark.slow
def test_a_checkpoints_options_file_repeats_its_run_exactly(reference_run: Path, tmp_path: Path, capsys) -> None:
    """--config with the saved training_options.json: the same TrainingArguments and, seeded, the same weights."""
    code = main(["train", "--dataset", "demo", "--model", "demo", "--output", str(tmp_path / "again"),
                 "--config", str(reference_run / OPTIONS_FILE)])
    assert code == 0, capsys.readouterr().err
    again = tmp_path / "again" / "final"
    assert _comparable(_saved_arguments(again)) == _comparable(_saved_arguments(reference_run))
    first, second = _weights(reference_run), _weights(again)
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.slow
def test_another_seed_gives_other_weights(reference_run: Path, tmp_path: Path) -> None:
    from segstudio.core.data import load_source

    dataset = load_source("demo")
    settings = TrainSettings(output_dir=tmp_path / "seed8", **{**CHOSEN, "seed": 8})
    final = train(dataset, model_to_train("demo", dataset, settings), settings).final_checkpoint
    first, other = _weights(reference_run), _weights(final)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def _train_only(count: int) -> SegDataset:
    demo = make_demo(train=count, validation=0, test=0)
    return dataclasses.replace(demo, splits=datasets.DatasetDict({"train": demo.splits["train"]}))


@pytest.mark.slow
@pytest.mark.parametrize(("accumulation", "optimizer_steps"), [(2, 2)])
def test_gradient_accumulation_counts_optimizer_steps_as_trainer_does(accumulation, optimizer_steps, tmp_path):
    """Three batches per epoch (3 steps without accumulation): Trainer takes len // g steps, plus one for a
    remainder."""
    dataset = _train_only(6)
    settings = TrainSettings(output_dir=tmp_path / "run", epochs=1, batch_size=2, image_size=32, device="cpu",
                             gradient_accumulation_steps=accumulation, logging_steps=1)
    result = train(dataset, model_to_train("demo", dataset, settings), settings)
    assert max(entry["step"] for entry in result.history) == optimizer_steps
    assert _saved_arguments(result.final_checkpoint).gradient_accumulation_steps == accumulation


@pytest.mark.slow
def test_two_dataloader_workers_train_and_name_an_unreadable_row(tmp_path: Path) -> None:
    demo = _train_only(4)
    rows = demo.splits["train"].cast_column("image", datasets.Image(decode=False))
    broken = rows.map(lambda row, index: {"image": {"bytes": b"not an image" if index == 0 else row["image"]["bytes"],
                                                    "path": None}}, with_indices=True)
    dataset = dataclasses.replace(demo, splits=datasets.DatasetDict({"train": broken}))
    settings = TrainSettings(output_dir=tmp_path / "run", max_steps=2, batch_size=2, image_size=32, device="cpu",
                             dataloader_num_workers=2)
    result = train(dataset, model_to_train("demo", dataset, settings), settings)
    assert result.final_checkpoint is not None
    assert list(result.skipped_items) == [broken[0]["file_name"]]
    assert _saved_arguments(result.final_checkpoint).dataloader_num_workers == 2


def test_flags_win_over_the_config_file_which_wins_over_defaults(tmp_path: Path) -> None:
    config = read_options_file(_write(tmp_path / "run.yaml", "epochs: 2\nbatch_size: 4\nlearning_rate: 6e-5\n"
                                                              "warmup_ratio: 0.1\n"))
    assert config == {"epochs": 2.0, "batch_size": 4, "learning_rate": 6e-5, "warmup_steps": 0.1}
    settings = settings_for(tmp_path / "out", {"batch_size": 16, "seed": None}, config=config)
    assert (settings.batch_size, settings.epochs, settings.warmup_steps, settings.seed) == (16, 2.0, 0.1, 0)
    by_steps = settings_for(tmp_path / "out", {"max_steps": 10}, config=config)
    assert (by_steps.max_steps, by_steps.epochs) == (10, None)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_an_options_file_round_trips_in_json_and_yaml(tmp_path: Path, suffix: str) -> None:
    options = TrainSettings(output_dir=tmp_path, **CHOSEN).record()
    write_options_file(tmp_path / f"options{suffix}", options)
    assert read_options_file(tmp_path / f"options{suffix}") == options


@pytest.mark.parametrize(("text", "message"), [
    ('{"batch_size": 2, "bogus": 1, "lr": 3}', "unknown option(s) bogus, lr"),
    ('{"batch_size": 0}', "batch_size must be at least 1, got 0"),
    ('{"lr_scheduler_type": "cosine_wiggle"}', "lr_scheduler_type expected one of linear"),
    ('{"batch_size": 2, "per_device_train_batch_size": 4}', "batch_size given twice"),
    ('{"warmup_ratio": 1.5}', "warmup_ratio must be a fraction"),
    ('[1, 2]', "not option: value pairs"),
    ('{"batch_size": ', "not valid JSON"),
    ('{"batch_size": 100000000000000000000000}', "batch_size must be at most 2147483647"),
    ('{"max_steps": 1e30}', "max_steps must be at most 2147483647"),
    ('{"image_size": 100000}', "image_size must be at most 4096"),
    ('{"seed": 4294967296}', "seed must be between 0 and 2**32 - 1"),
])
def test_bad_config_files_are_one_line_and_exit_2(tmp_path: Path, capsys, text: str, message: str) -> None:
    config = _write(tmp_path / "run.json", text)
    with pytest.raises(OptionError, match="config file"):
        read_options_file(config)
    code = main(["train", "--dataset", "demo", "--model", "demo", "--output", str(tmp_path / "out"),
                 "--config", str(config)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_bad_yaml_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="not valid YAML .* on line 2"):
        read_options_file(_write(tmp_path / "run.yml", "batch_size: 2\n  seed: [\n"))


@pytest.mark.parametrize("argv", [
    ["--gradient-accumulation-steps", "0"], ["--warmup-steps", "1.5"], ["--augmentation", "rotate"],
    ["--lr_scheduler_type", "wiggle"], ["--dataloader-num-workers", "-1"], ["--weight-decay", "nan"],
    ["--batch-size", "100000000000000000000000"], ["--image-size", "5000"], ["--epochs", "1e300"],
])
def test_bad_option_values_are_one_line_and_exit_2(tmp_path: Path, capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, with its status
        main(["train", "--dataset", "demo", "--model", "demo", "--output", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and argv[0] in err[0], err


def test_tensorboard_without_the_package_is_refused_with_the_extra_to_install(tmp_path: Path, capsys,
                                                                             monkeypatch) -> None:
    real_find_spec = training_options.importlib.util.find_spec
    monkeypatch.setattr(training_options.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("tensorboard") else real_find_spec(name, *a))
    code = main(["train", "--dataset", "demo", "--model", "demo", "--output", str(tmp_path / "out"),
                 "--report-to", "tensorboard"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "segstudio[tensorboard]" in err[0], err
    with pytest.raises(TrainingError, match=r"segstudio\[tensorboard\]"):
        train(_train_only(2), None, TrainSettings(output_dir=tmp_path / "api", report_to="tensorboard"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "api").exists()


def test_augmentations_keep_image_and_mask_aligned() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    image, mask = Image.fromarray(pixels), np.arange(24 * 32, dtype=np.int64).reshape(24, 32) % 251
    kept, kept_mask = transforms.augment(image, mask, "none")
    assert kept is image and kept_mask is mask
    for seed in range(6):
        torch.manual_seed(seed)
        flipped, flipped_mask = transforms.augment(image, mask, "flip")
        mirrored = np.array_equal(flipped_mask, mask[:, ::-1])
        assert mirrored or np.array_equal(flipped_mask, mask)
        assert np.array_equal(np.asarray(flipped), np.asarray(ImageOps.mirror(image) if mirrored else image))
        torch.manual_seed(seed)
        cropped, cropped_mask = transforms.augment(image, mask, "flip-crop")
        torch.manual_seed(seed)
        coloured, coloured_mask = transforms.augment(image, mask, "flip-crop-color")
        assert np.array_equal(coloured_mask, cropped_mask) and coloured.size == cropped.size
        assert cropped_mask.shape == (cropped.size[1], cropped.size[0])
        assert not np.array_equal(np.asarray(coloured), np.asarray(cropped))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.slow
def test_info_shows_how_a_checkpoint_was_trained(reference_run: Path, capsys) -> None:
    assert main(["info", "--model", str(reference_run)]) == 0
    out = capsys.readouterr().out
    assert "10 classes, reduce_labels true" in out
    assert "gradient_accumulation_steps 2" in out and "lr_scheduler_type cosine" in out and "seed 7" in out
    assert main(["info", "--model", str(reference_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training_options"] == read_training_options(reference_run)
    assert main(["info", "--model", "demo"]) == 0
    assert "not recorded" in capsys.readouterr().out


def test_the_api_takes_the_same_options_and_refuses_unknown_ones(tmp_path: Path) -> None:
    import segstudio as ss

    with pytest.raises(OptionError, match="unknown option.*learning_rat\\b"):
        ss.train(_train_only(2), "demo", tmp_path / "run", learning_rat=1e-3)
    with pytest.raises(OptionError, match="gradient_accumulation_steps must be at least 1"):
        ss.train(_train_only(2), "demo", tmp_path / "run", gradient_accumulation_steps=0)
    assert not (tmp_path / "run").exists()
