import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from playground.classify.experiment import HISTORY
from playground.core import distributed
from playground.core.runs import read_result
from playground.data import TensorLoader
from tests.conftest import REPO


def test_shards_are_disjoint_equal_and_reshuffled_in_step():
    x = torch.arange(103)
    loaders = [TensorLoader(x, batch_size=8, shuffle=True, seed=5, shard=r, num_shards=2) for r in range(2)]
    epoch1 = [torch.cat([b[0] for b in loader]) for loader in loaders]
    assert len(epoch1[0]) == len(epoch1[1]) == 51 and len(loaders[0]) == len(loaders[1]) == 7
    assert not set(epoch1[0].tolist()) & set(epoch1[1].tolist())
    epoch2 = [torch.cat([b[0] for b in loader]) for loader in loaders]
    assert not torch.equal(epoch1[0], epoch2[0])
    assert not set(epoch2[0].tolist()) & set(epoch2[1].tolist())  # same permutation on both ranks


def test_without_torchrun_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env() is False
    assert (distributed.world_size(), distributed.rank(), distributed.is_main_process()) == (1, 0, True)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model, torch.device("cpu")) is model
    assert distributed.sum_across_ranks(1.0, 2.0) == [1.0, 2.0]


@pytest.mark.slow
def test_recipe_runs_data_parallel_under_torchrun(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    home = tmp_path / "runs"
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "OMP_NUM_THREADS": "1"}
    command = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "playground.cli",
        "run",
        str(REPO / "recipes" / "classify_fashion.toml"),
        "--quiet",
        "--set",
        "dataset=digits",
        "--set",
        "epochs=4",
        "--set",
        "width=16",
        "--set",
        "pool_size=2",
        "--set",
        "batch_size=32",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = list(home.iterdir())
    assert len(runs) == 1 and done.stdout.strip() == str(runs[0])  # only rank 0 wrote and printed
    metrics = json.loads((runs[0] / "metrics.json").read_text())["metrics"]
    assert metrics["test/accuracy"] >= 0.9
    history = read_result(runs[0], HISTORY)
    assert len(history["step_loss"]) == 4 * (1347 * 9 // 10 // 2 // 32)  # each rank: half the images
