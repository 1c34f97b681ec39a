"""keep_freed_memory: freed tensor buffers are reused instead of being mapped and faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from segstudio import process_setup as allocator

FAULTS = r'''
import json, resource, threading
from segstudio.process_setup import keep_freed_memory
import torch
tuned = keep_freed_memory()
conv = torch.nn.Conv2d(32, 32, 3, padding=1)
x = torch.randn(4, 32, 256, 256)  # 32 MiB activations: above glibc's largest dynamic mmap threshold
def step():
    with torch.inference_mode():
        return float((torch.nn.functional.gelu(conv(x)) + x).sum())
def steps(count):
    for _ in range(count):
        step()
def faults_in(run, count):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    run(count)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
def in_worker(count):  # as the GUI's QThread workers run inference and training
    worker = threading.Thread(target=steps, args=(count,))
    worker.start()
    worker.join()
faults_in(steps, 2)
main = faults_in(steps, 10)
faults_in(in_worker, 2)
print(json.dumps({"tuned": tuned, "faults": main, "worker_faults": faults_in(in_worker, 10)}))
'''


def _faults(opt_out: bool) -> dict:
    env = {key: value for key, value in os.environ.items() if key != allocator.OPT_OUT}
    if opt_out:
        env[allocator.OPT_OUT] = "1"
    done = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again() -> None:
    default, tuned = _faults(opt_out=True), _faults(opt_out=False)
    assert default["tuned"] is False and tuned["tuned"] is True
    every_step = 10 * (32 << 20) // 4096  # pages: one activation mapped and zero-filled again per step
    assert default["faults"] > every_step and default["worker_faults"] > every_step
    two_buffers = 2 * (32 << 20) // 4096  # at most two activations faulted in again over the 10 steps
    assert tuned["faults"] < two_buffers
    assert tuned["worker_faults"] < two_buffers


def test_the_opt_out_leaves_the_allocator_alone(monkeypatch) -> None:
    monkeypatch.setenv(allocator.OPT_OUT, "1")
    assert allocator.keep_freed_memory() is False
