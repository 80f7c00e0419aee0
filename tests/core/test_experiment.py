"""The run template: every experiment is seeded, threaded, placed and written the same way."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import time

import pytest
import torch

from playground.core.config import RunConfig, apply_overrides, build_config
from playground.core.experiment import Finished, run_experiment
from playground.core.progress import report
from playground.core.runs import Metrics, load_run
from playground.core.status import (
    STALE,
    RunStatus,
    describe_progress,
    format_duration,
    read_status,
    write_status,
)
from playground.errors import ConfigError, DataNotFoundError


@dataclasses.dataclass
class Toy(RunConfig):
    name: str = "toy"
    size: int = 3


def toy_steps(run, data):
    metrics = Metrics()
    metrics.add("draw", float(torch.rand(1)), "value")
    if run.save_models:
        (run.dir.path / "model.txt").write_text("weights")
    return Finished(metrics, f"# toy on {run.device}\n", {"data": data, "threads": torch.get_num_threads()})


def load_toy(config, device, progress):
    if config.size < 0:
        raise DataNotFoundError("no such data")
    return list(range(config.size))


def test_the_template_seeds_writes_and_hands_back_typed_results(playground_home):
    first = run_experiment("toy", Toy(seed=5), load_toy, toy_steps)
    second = run_experiment("toy", Toy(seed=5), load_toy, toy_steps)
    assert first.metrics.values["draw"] == second.metrics.values["draw"]  # seeded
    assert first.run_dir != second.run_dir and first.run_dir.parent == playground_home
    info = load_run(first.run_dir)
    assert info.experiment == "toy" and info.metrics["draw"] == first.metrics.values["draw"]
    assert json.loads((first.run_dir / "metrics.json").read_text())["units"]["draw"] == "value"
    assert first.report == (first.run_dir / "report.md").read_text() == "# toy on cpu\n"
    assert first.results["data"] == [0, 1, 2] and (first.run_dir / "model.txt").is_file()


def test_the_one_save_flag_and_the_thread_count(playground_home):
    before = torch.get_num_threads()
    try:
        result = run_experiment("toy", Toy(save_models=False, threads=1), load_toy, toy_steps)
    finally:
        torch.set_num_threads(before)
    assert not (result.run_dir / "model.txt").exists() and result.results["threads"] == 1


def test_bad_data_fails_before_a_run_folder_exists(playground_home):
    with pytest.raises(DataNotFoundError):
        run_experiment("toy", Toy(size=-1), load_toy, toy_steps)
    assert not playground_home.exists() or not any(playground_home.iterdir())


def test_renamed_save_keys_still_work_with_a_notice(capsys):
    config = build_config(Toy, {"save_checkpoint": False}, "recipe x")
    assert config.save_models is False
    assert "save_checkpoint in recipe x is now save_models" in capsys.readouterr().err
    values = apply_overrides({}, ["save_checkpoints=false"], Toy)
    assert values == {"save_models": False}
    with pytest.raises(ConfigError, match="threads"):
        Toy(threads=-1)


# --------------------------------------------------------------------- run status and progress


def staged_steps(run, data):
    """Three stages of work (the second with two epochs), reported the way the library reports."""
    for epoch in (1, 2):
        for step in range(1, 4):
            time.sleep(0.01)
            report(run.progress, "train", step, 3, epoch=epoch)
    report(run.progress, "evaluate", 1, 1)
    if data == [0, 1, 2, 3, 4]:
        raise ValueError("broken\non two lines")
    return Finished(Metrics(), "# staged\n")


def test_a_finished_run_is_complete_with_its_timeline(playground_home):
    result = run_experiment("toy", Toy(), load_toy, staged_steps)
    status = read_status(result.run_dir)
    assert status.state == "complete" and status.finished and status.error == ""
    assert [stage for stage, _ in status.timeline] == ["train · epoch 1", "train · epoch 2", "evaluate"]
    assert status.seconds is not None and 0 <= status.seconds < 60 and status.pid == os.getpid()
    assert status.describe().startswith("complete in ")


def test_a_failed_run_says_why_in_one_line_and_an_interrupted_one_says_it_stopped(playground_home):
    with pytest.raises(ValueError):
        run_experiment("toy", Toy(size=5), load_toy, staged_steps)
    [failed] = list(playground_home.iterdir())
    status = read_status(failed)
    assert status.state == "failed" and status.error == "ValueError: broken on two lines"

    def interrupted(run, data):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment("toy", Toy(name="stop"), load_toy, interrupted)
    [stopped] = [p for p in playground_home.iterdir() if p.name.startswith("stop")]
    assert read_status(stopped).state == "interrupted"


def test_the_second_run_of_the_same_work_knows_stage_k_of_n_and_the_time_left(playground_home):
    run_experiment("toy", Toy(), load_toy, staged_steps)
    seen = []

    def watching(run, data):
        original = run.progress.listener
        run.progress.listener = lambda event: seen.append(run.progress.snapshot())
        try:
            return staged_steps(run, data)
        finally:
            run.progress.listener = original

    run_experiment("toy", Toy(seed=3), load_toy, watching)  # another seed: the same work
    assert all(s["stages"] == 3 for s in seen)
    assert [s["index"] for s in seen][:: len(seen) - 1] == [1, 3]
    fractions = [s["fraction"] for s in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0 <= fractions[0] < 0.5
    assert all(s["left"] is not None and s["left"] >= 0 for s in seen)
    other = []
    run_experiment(
        "toy",
        Toy(size=4),
        load_toy,
        lambda run, data: other.append(run.progress.snapshot()) or staged_steps(run, data),
    )
    assert other[0]["stages"] is None  # other work: no earlier run to time it by


def test_a_stale_heartbeat_or_a_vanished_process_reads_as_interrupted(tmp_path):
    now = time.time()
    write_status(
        tmp_path, RunStatus("running", started=now, updated=now, pid=os.getpid(), host=socket.gethostname())
    )
    assert read_status(tmp_path).state == "running"
    assert read_status(tmp_path, now=now + STALE + 1).state == "interrupted"
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_status(
        tmp_path, RunStatus("running", started=now, updated=now, pid=dead.pid, host=socket.gethostname())
    )
    status = read_status(tmp_path)
    assert status.state == "interrupted" and "stopped without finishing" in status.error


def test_old_runs_and_damaged_status_files(tmp_path):
    (tmp_path / "config.toml").write_text('experiment = "toy"\n')
    assert read_status(tmp_path).state == "interrupted"  # no report: it never finished
    (tmp_path / "report.md").write_text("# old\n")
    (tmp_path / "metrics.json").write_text("{}")
    assert read_status(tmp_path).state == "complete"  # a run from before status.json
    (tmp_path / "status.json").write_text("{not json")
    assert "damaged" in read_status(tmp_path).error
    (tmp_path / "status.json").write_text('{"state": "exploded"}')
    assert "unknown state" in read_status(tmp_path).error


def test_describe_progress_and_durations():
    assert format_duration(None) == "?" and format_duration(42.4) == "42 s"
    assert format_duration(192) == "3 min 12 s" and format_duration(3900) == "1 h 05 min"
    line = describe_progress(
        {
            "stage": "train",
            "step": 4,
            "total": 10,
            "index": 2,
            "stages": 5,
            "fraction": 0.4,
            "elapsed": 30,
            "left": 45,
        }
    )
    assert line == "train · stage 2 of 5 · step 4/10 · 40% · 30 s elapsed · about 45 s left"
    assert describe_progress({"stage": "load", "elapsed": 1}).endswith("time left unknown")


def test_without_an_earlier_run_a_stage_with_a_total_estimates_its_own_time_left(monkeypatch):
    from playground.core import progress as progress_module
    from playground.core.progress import ProgressEvent, RunProgress

    clock = iter([0.0, 10.0, 10.0, 30.0, 30.0, 40.0, 40.0])  # start, then (event, snapshot) pairs
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    run = RunProgress()
    run(ProgressEvent("trials", 62, 298))  # resumed: 62 finished before, so the pace counts from here
    assert run.snapshot()["stage_left"] is None
    run(ProgressEvent("trials", 64, 298))  # 2 trials in 20 s
    snapshot = run.snapshot()
    assert snapshot["left"] is None and snapshot["stage_left"] == pytest.approx(234 * 10.0)
    assert describe_progress(snapshot).endswith("about 39 min 00 s left in this stage")
    run(ProgressEvent("report", 1, 0))  # a stage without a total: unknown again
    assert run.snapshot()["stage_left"] is None
