"""Sweeps: every trial a normal run, reruns skip what finished, failures are recorded, Ray or local."""

import csv
import json
import socket
import time

import pytest

from playground.errors import ConfigError
from playground.sweep import runner as sweep_runner
from playground.sweep.runner import check_address
from playground.sweep.space import Trial, grid_trials
from playground.sweep.sweep import run_sweep

RECIPE = "recipes/classify_fashion.toml"
TINY = ['dataset="digits"', "epochs=1", "save_models=false", "batch_size=64"]


def fake_trials(monkeypatch, fail_width=None):
    """Replace the training by a formula (width / 100) so the ledger logic runs in milliseconds."""
    calls = []

    def run_trial(job):
        calls.append(job)
        width = int(next(o for o in reversed(job.overrides) if o.startswith("width=")).split("=")[1])
        if width == fail_width:
            return {"status": "failed", "error": "RuntimeError: width 13 is unlucky"}
        folder = sweep_runner.Path(job.out) / f"trial-{job.key}"
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "status": "done",
            "run_dir": str(folder),
            "metrics": {"test/accuracy": width / 100 + job.seed},
        }

    monkeypatch.setattr(sweep_runner, "run_trial", run_trial)
    return calls


def test_a_rerun_skips_finished_trials_and_retries_failed_ones(tmp_path, monkeypatch):
    calls = fake_trials(monkeypatch, fail_width=13)
    trials = grid_trials({"width": [8, 13, 16]}, [0, 1])
    first = run_sweep(RECIPE, trials, overrides=TINY, out=tmp_path / "sw")
    assert (first.ran, first.skipped, len(first.failed), len(calls)) == (6, 0, 2, 6)
    assert [e["status"] for e in first.entries] == ["done", "done", "failed", "failed", "done", "done"]
    assert first.failed[0]["error"] == "RuntimeError: width 13 is unlucky"
    again = run_sweep(RECIPE, trials, overrides=TINY, out=tmp_path / "sw")
    assert (again.ran, again.skipped, len(calls)) == (2, 4, 8)  # only the failed trials ran again
    other_base = run_sweep(RECIPE, trials[:1], overrides=[*TINY, "lr=0.01"], out=tmp_path / "sw")
    assert other_base.ran == 1  # other base values: another trial


def test_the_table_csv_and_report_hold_every_point_with_its_seeds(tmp_path, monkeypatch):
    fake_trials(monkeypatch, fail_width=13)
    result = run_sweep(RECIPE, grid_trials({"width": [8, 13, 16]}, [0, 1]), overrides=TINY, out=tmp_path)
    assert result.metrics == ["test/accuracy"]
    report = (tmp_path / "report.md").read_text()
    assert "| 8 | 2/2 | 0.58 ± 0.7071 |" in report and "| 13 | 0/2 | – |" in report
    assert "width 13 is unlucky" in report and (tmp_path / "sweep.png").stat().st_size > 5000
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [(r["width"], r["seed"], r["status"]) for r in rows][:3] == [
        ("8", "0", "done"),
        ("8", "1", "done"),
        ("13", "0", "failed"),
    ]
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics == {"sweep/trials": 6.0, "sweep/failed": 2.0}


def test_bad_sweeps_are_refused_before_any_trial_runs(tmp_path, monkeypatch):
    calls = fake_trials(monkeypatch)
    (tmp_path / "file").write_text("x")
    trials = [Trial((("width", 8),), 0)]
    for kwargs, problem in (
        ({"out": tmp_path / "file"}, "is a file"),
        ({"backend": "spark"}, "backend must be one of"),
        ({"address": "127.0.0.1:1"}, "an --address needs ray"),
        ({"overrides": ["nope=1"]}, "unknown key 'nope'"),
    ):
        with pytest.raises(ConfigError, match=problem):
            run_sweep(RECIPE, trials, **{"overrides": TINY, "out": tmp_path / "sw", **kwargs})
    with pytest.raises(ConfigError, match="the sweep is empty"):
        run_sweep(RECIPE, [], out=tmp_path / "sw")
    assert not calls


def test_a_ray_address_that_does_not_answer_is_refused_within_seconds():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="must look like host:6379"):
        check_address("somewhere")
    assert time.monotonic() - start < 10


@pytest.mark.slow
def test_real_trials_are_normal_runs_and_a_failing_one_does_not_stop_the_sweep(tmp_path):
    trials = grid_trials({"width": [4, 8], "dataset": ["digits", "folder"]}, [0])
    result = run_sweep(RECIPE, trials, overrides=[*TINY[1:], 'data_root="/nonexistent"'], out=tmp_path)
    done = [e for e in result.entries if e["status"] == "done"]
    assert len(done) == 2 and len(result.failed) == 2
    assert all(
        "DataNotFoundError: image folder /nonexistent does not exist" in e["error"] for e in result.failed
    )
    for entry in done:
        run = sweep_runner.Path(entry["run_dir"])
        assert run.parent == tmp_path and (run / "report.md").is_file() and (run / "config.toml").is_file()
        assert 0 <= entry["metrics"]["test/accuracy"] <= 1 and entry["metrics"]["model/parameters"] > 0


@pytest.mark.slow
def test_ray_runs_the_same_trials_to_the_same_numbers_as_local_processes(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional [sweep] extra")
    trials = grid_trials({"width": [4, 8]}, [0])
    local = run_sweep(RECIPE, trials, overrides=TINY, out=tmp_path / "local")  # in this process
    ray = run_sweep(RECIPE, trials, overrides=TINY, out=tmp_path / "ray", jobs=2, backend="ray")
    assert not local.failed and not ray.failed
    for a, b in zip(local.entries, ray.entries):
        assert a["metrics"]["test/accuracy"] == b["metrics"]["test/accuracy"]


def test_a_sweep_stopped_early_cancels_the_trials_not_yet_started(tmp_path):
    from tests.sweep.sleepy_trial import sleepy_trial

    jobs = [sweep_runner.TrialJob(f"k{i}", RECIPE, "quick", (), 0, str(tmp_path)) for i in range(16)]
    outcomes = sweep_runner.local_outcomes(jobs, 2, trial=sleepy_trial)
    next(outcomes)  # one trial finished; then the user presses Ctrl-C
    outcomes.close()
    time.sleep(1.5)  # anything still running would have marked itself by now
    started = len(list(tmp_path.glob("started-*")))
    assert 2 <= started <= 8  # the first ones, the running ones and the few the pool had queued: not all 16
