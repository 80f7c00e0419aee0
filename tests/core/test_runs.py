import json

import pytest

from playground.core.runs import (
    Metrics,
    RunDir,
    aggregate_seeds,
    list_runs,
    load_run,
    markdown_table,
    metrics_table,
)
from playground.errors import PlaygroundError


def test_run_dir_is_created_under_playground_home_and_never_reused(playground_home):
    first = RunDir.create("demo")
    second = RunDir.create("demo")
    assert first.path.parent == playground_home
    assert first.path.name.startswith("demo-") and first.path != second.path


def test_metrics_json_follows_the_schema(tmp_path):
    run = RunDir.create("demo", tmp_path)
    metrics = Metrics()
    metrics.add("test/accuracy", 0.9, "fraction")
    metrics.add("train/seconds", 12, "s")
    run.write_metrics(metrics)
    data = json.loads((run.path / "metrics.json").read_text())
    assert data == {
        "metrics": {"test/accuracy": 0.9, "train/seconds": 12.0},
        "units": {"test/accuracy": "fraction", "train/seconds": "s"},
    }


def test_aggregate_seeds_gives_mean_and_std():
    runs = []
    for value in (0.8, 0.9, 1.0):
        m = Metrics()
        m.add("test/accuracy", value, "fraction")
        runs.append(m)
    merged = aggregate_seeds(runs)
    assert merged.values["test/accuracy"] == pytest.approx(0.9)
    assert merged.values["test/accuracy:std"] == pytest.approx(0.1)
    assert merged.units["test/accuracy:std"] == "fraction"
    assert "0.9 ± 0.1" in metrics_table(merged)


def test_list_and_load_runs(tmp_path):
    assert list_runs(tmp_path / "none") == []
    run = RunDir.create("demo", tmp_path)
    run._write("config.toml", 'experiment = "classify"\n[config]\nname = "demo"\n')
    run.write_report("# hello")
    (run.path / "plot.png").write_bytes(b"png")
    m = Metrics()
    m.add("test/accuracy", 0.5)
    run.write_metrics(m)
    (tmp_path / "not-a-run").mkdir()
    [info] = list_runs(tmp_path)
    assert info.experiment == "classify" and info.metrics == {"test/accuracy": 0.5}
    assert info.report == "# hello" and [p.name for p in info.plots] == ["plot.png"]
    with pytest.raises(PlaygroundError, match="does not exist"):
        load_run(tmp_path / "missing")


def test_markdown_table_formats_numbers():
    table = markdown_table(["a", "b"], [["x", 0.123456], ["y", 74922.0]])
    assert "| x | 0.1235 |" in table and "| y | 74,922 |" in table


def test_compare_runs_keeps_shared_metrics(tmp_path):
    from playground.core.runs import RunInfo, compare_runs

    a = RunInfo(tmp_path / "a", "classify", {"test/accuracy": 0.9, "only/a": 1.0}, {})
    b = RunInfo(tmp_path / "b", "classify", {"test/accuracy": 0.8}, {})
    assert compare_runs([a, b]) == {"test/accuracy": {"a": 0.9, "b": 0.8}}
    assert compare_runs([a]) == {"test/accuracy": {"a": 0.9}, "only/a": {"a": 1.0}}
