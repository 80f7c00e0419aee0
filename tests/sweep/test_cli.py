"""``playground sweep`` on the command line: one error line for bad input, before any work."""

import pytest

from playground.cli import main
from playground.sweep import runner as sweep_runner


@pytest.fixture
def no_trials(monkeypatch):
    def refuse(job):
        raise AssertionError("a trial ran although the sweep should have been refused")

    monkeypatch.setattr(sweep_runner, "run_trial", refuse)


@pytest.mark.parametrize(
    "args, problem",
    [
        ([], "the sweep is empty"),
        (["--grid", "nope=1,2"], "unknown key 'nope'"),
        (["--grid", "width="], "a grid entry looks like key=v1,v2"),
        (["--seeds", "0,0", "--grid", "width=8"], "--seeds takes different"),
        (["--sample", "3"], "needs a \\[sweep.ranges\\] table"),
        (["--grid", "width=8", "--backend", "local", "--address", "h:1"], "an --address needs ray"),
    ],
)
def test_a_bad_sweep_is_one_error_line(args, problem, capsys, tmp_path, no_trials):
    code = main(["sweep", "recipes/classify_fashion.toml", "--out", str(tmp_path / "sw"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert __import__("re").search(problem, err), err


def test_out_pointing_at_a_file_is_refused_before_the_recipe_loads(capsys, tmp_path, no_trials):
    (tmp_path / "file").write_text("x")
    code = main(["sweep", "missing.toml", "--grid", "width=8", "--out", str(tmp_path / "file")])
    assert code == 2 and "is a file" in capsys.readouterr().err


def test_a_sweep_prints_its_table_and_folder_and_fails_when_a_trial_failed(capsys, tmp_path, monkeypatch):
    def run_trial(job):
        if job.overrides[-1] == "width=13":
            return {"status": "failed", "error": "RuntimeError: unlucky"}
        return {"status": "done", "run_dir": str(tmp_path), "metrics": {"test/accuracy": 0.5}}

    monkeypatch.setattr(sweep_runner, "run_trial", run_trial)
    args = [
        "sweep",
        "recipes/classify_fashion.toml",
        "--grid",
        "width=8,13",
        "--backend",
        "local",
        "--jobs",
        "1",
    ]
    code = main([*args, "--out", str(tmp_path / "sw"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1 and out.strip() == str(tmp_path / "sw")
    assert "| 8 | 1/1 | 0.5 |" in err and "RuntimeError: unlucky" in err
