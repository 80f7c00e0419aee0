import json
from pathlib import Path

import pytest

from playground.core.runs import Metrics, RunDir, list_runs, load_run, markdown_table, metrics_table
from playground.core.seeds import aggregate_scalars
from playground.errors import DataFormatError, DataNotFoundError, PlaygroundError


def test_run_dir_is_created_under_playground_home_and_never_reused(playground_home):
    first = RunDir.create("demo")
    second = RunDir.create("demo")
    assert first.path.parent == playground_home
    assert first.path.name.startswith("demo-") and first.path != second.path


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_playground_home_means_the_default_runs_folder_not_the_current_one(monkeypatch, value):
    from playground.core.runs import playground_home

    monkeypatch.setenv("PLAYGROUND_HOME", value)
    assert playground_home() == Path("runs")


def test_metrics_json_follows_the_schema(tmp_path):
    run = RunDir.create("demo", tmp_path)
    metrics = Metrics()
    metrics.add("test/accuracy", 0.9, "fraction")
    metrics.add("train/seconds", 12, "s")
    run.write_metrics(metrics)
    data = json.loads((run.path / "metrics.json").read_text())
    assert data["metrics"] == {"test/accuracy": 0.9, "train/seconds": 12.0}
    assert data["units"] == {"test/accuracy": "fraction", "train/seconds": "s"}
    assert [r["name"] for r in data["records"]] == ["test/accuracy", "train/seconds"]


def test_aggregate_seeds_gives_mean_and_std():
    runs = []
    for value in (0.8, 0.9, 1.0):
        m = Metrics()
        m.add("test/accuracy", value, "fraction")
        runs.append(m)
    merged = aggregate_scalars(runs)
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


def test_metrics_are_typed_records_with_split_and_tags_and_the_old_layout_reads_back(tmp_path):
    import json

    from playground.core.runs import Record

    metrics = Metrics()
    metrics.add("test/accuracy", 0.9, "fraction", "test")
    metrics.add("sweep/dim_8/top1", 0.7, "fraction", "test", dim=8, measure="top1")
    metrics.add("sweep/dim_32/top1", 0.8, "fraction", "test", dim=32, measure="top1")
    metrics.add("run/seconds", 12.0, "s")
    assert [r.value for r in metrics.select(dim=...)] == [0.7, 0.8]
    assert [r.tags["dim"] for r in metrics.select("test", measure="top1")] == [8, 32]
    assert metrics.select(dim=8)[0] == Record(
        "sweep/dim_8/top1", 0.7, "fraction", "test", {"dim": 8, "measure": "top1"}
    )
    assert [r.name for r in metrics.select("")] == ["run/seconds"]
    run = RunDir.create("typed", tmp_path)
    run.write_metrics(metrics)
    data = json.loads((run.path / "metrics.json").read_text())
    assert data["metrics"]["test/accuracy"] == 0.9 and data["units"]["run/seconds"] == "s"  # the jq view
    assert data["records"][1] == {
        "name": "sweep/dim_8/top1",
        "value": 0.7,
        "unit": "fraction",
        "split": "test",
        "tags": {"dim": 8, "measure": "top1"},
    }
    assert load_run(run.path).measured.select(dim=32)[0].value == 0.8
    (run.path / "metrics.json").write_text(json.dumps({"metrics": data["metrics"], "units": data["units"]}))
    old = load_run(run.path)  # a run made before records: same numbers, no split or tags
    assert old.metrics == metrics.values and old.measured.select(dim=...) == []
    merged = aggregate_scalars([metrics, metrics])
    assert merged.select(dim=8)[0].std == 0.0 and merged.splits["test/accuracy"] == "test"


def test_results_sections_share_one_file_and_old_side_files_still_read(tmp_path):
    import dataclasses

    from playground.core.runs import RESULTS, read_result

    @dataclasses.dataclass
    class History:
        epochs: list

    run = RunDir.create("results", tmp_path)
    run.write_result("history", History([{"epoch": 1}]))
    run.write_result("curves", {"random": [0.5, 0.6]})
    assert sorted(p.name for p in run.path.iterdir()) == [RESULTS]
    assert read_result(run.path, "history") == {"epochs": [{"epoch": 1}]}
    assert read_result(run.path, "curves", legacy="curves.json") == {"random": [0.5, 0.6]}
    with pytest.raises(DataNotFoundError, match="no 'probes' results"):
        read_result(run.path, "probes", legacy="probes.json")

    old = RunDir.create("old", tmp_path)  # a run made before results.json: one file per section
    old.write_json("curves.json", {"bald": [0.7]})
    assert read_result(old.path, "curves", legacy="curves.json") == {"bald": [0.7]}
    latency = RunDir.create("latency", tmp_path)  # an old latency run's results.json held its rows
    latency.write_json(RESULTS, {"torch_fp32": {"p50_ms": 1.0}})
    assert read_result(latency.path, "latency", legacy=RESULTS) == {"torch_fp32": {"p50_ms": 1.0}}


# --------------------------------------------------------------------- where a run may be written


def test_a_runs_root_that_is_a_file_or_under_one_is_refused_before_anything_is_made(tmp_path):
    from playground.core.runs import check_run_target
    from playground.errors import ConfigError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"runs root \(--out\) .*a-file is a file, not a folder"):
        RunDir.create("demo", blocker)
    with pytest.raises(ConfigError, match=r"a-file/deeper cannot be made: .*a-file is a file"):
        check_run_target("demo", blocker / "deeper")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="is a broken link"):
        check_run_target("demo", tmp_path / "dangling")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "dangling"]
    assert check_run_target("demo", tmp_path / "new" / "runs") == tmp_path / "new" / "runs"
    assert not (tmp_path / "new").exists()  # the check makes nothing


def test_the_default_runs_root_is_checked_too(playground_home, monkeypatch, tmp_path):
    from playground.errors import ConfigError

    (tmp_path / "home-file").write_text("")
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home-file"))
    with pytest.raises(ConfigError, match=r"runs root \(\$PLAYGROUND_HOME\)"):
        RunDir.create("demo")


def test_a_read_only_runs_root_is_refused(tmp_path, monkeypatch):
    """The tests run as root, who may write anywhere, so os.access is told the folder is read-only."""
    import os

    from playground.core.runs import check_run_target
    from playground.errors import ConfigError

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and real_access(path, mode))
    with pytest.raises(
        ConfigError, match=r"not writable \(the nearest folder that exists, .*, is read-only\)"
    ):
        check_run_target("demo", tmp_path / "runs")
    with pytest.raises(ConfigError, match="is not writable; give a folder"):
        check_run_target("demo", tmp_path)
    assert check_run_target("demo", tmp_path / "..") == tmp_path / ".."  # other folders still pass


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "a/b", "a\\b", "nul\0byte", "x" * 121])
def test_a_run_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    from playground.core.runs import check_run_target
    from playground.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot name a run folder"):
        check_run_target(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("root", ["bad\0root", "x" * 5000, "x" * 300])  # 300: over a file name's 255
def test_a_runs_root_that_no_file_system_accepts_is_one_config_error(root):
    from playground.core.runs import check_run_target
    from playground.errors import ConfigError

    with pytest.raises(ConfigError, match="NUL character|characters long|name too long"):
        check_run_target("demo", root)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"format": "playground.results/1", "sections": [1]}', "its sections are [1], not a JSON object"),
        ("[" * 50_000 + "]" * 50_000, "is not valid JSON (maximum recursion depth"),
        ('{"format": "playground.results/1", "sections": {', "is not valid JSON"),
    ],
)
def test_a_hostile_results_file_is_one_data_format_error(tmp_path, text, problem):
    from playground.core.runs import RESULTS, read_result

    (tmp_path / RESULTS).write_text(text)
    with pytest.raises(DataFormatError) as info:
        read_result(tmp_path, "summary")
    assert f"{tmp_path / RESULTS}" in str(info.value) and problem in str(info.value)


def test_a_damaged_run_folder_is_one_clear_error_or_reads_as_unknown(tmp_path):
    """Issue 25: a config.toml that is not UTF-8 or names its experiment as a number, results.json
    sections that are a list or a string, JSON nested 100,000 deep, a metrics.json that is not UTF-8."""
    from playground.core.runs import RESULTS_FORMAT, read_result, read_run_config
    from playground.errors import DataFormatError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_bytes(b"experiment = '\xff'\n")
    (run / "metrics.json").write_bytes(b'{"metrics": "\xff"}')
    assert load_run(run).experiment == "?" and load_run(run).metrics == {}  # was a UnicodeDecodeError
    (run / "config.toml").write_text("experiment = 5\nconfig = 7\n")
    assert load_run(run).experiment == "?"  # was 5, and canonical_key of a number
    with pytest.raises(
        DataFormatError, match="must name its experiment as text and hold a \\[config\\] table"
    ):
        read_run_config(run)
    results = run / "results.json"
    for sections in ([["curves", 1]], "ab"):
        results.write_text(json.dumps({"format": RESULTS_FORMAT, "sections": sections}))
        with pytest.raises(DataFormatError, match="its sections are .*, not a JSON object"):
            read_result(run, "curves")
    results.write_text("[" * 100_000)
    with pytest.raises(DataFormatError, match="is not valid JSON"):
        read_result(run, "curves")
