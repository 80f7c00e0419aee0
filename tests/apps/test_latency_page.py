"""The Latency benchmark page: the empty state with its command line, and a finished run's table,
Pareto and latency charts, checks, comparison with another run, and a damaged run folder."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from playground.core.runs import RunDir, read_result
from playground.latency.experiment import Bench, Config, run
from playground.latency.results import BENCHMARK
from tests.apps.conftest import open_page_at, plotly_spec

VARIANTS = ["torch_fp32", "ort_fp32", "ort_int8_static", "student_kd"]
TINY = dict(
    dataset="digits",
    width=8,
    depth=2,
    pool_size=2,
    embedding_dim=32,
    epochs=2,
    batch_size=32,
    student_width=4,
    methods=VARIANTS,
    batch_sizes=[1, 16],
    bench=Bench(warmup=1, min_iters=3, min_seconds=0.0, max_seconds=0.5),
    calibration_images=64,
)


@pytest.fixture(scope="module")
def latency_template(tmp_path_factory):
    """One tiny benchmark run (about 5 s on one thread), made once; tests copy it into their runs root."""
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("latency-template")))).run_dir


@pytest.fixture
def latency_run(latency_template, playground_home):
    return shutil.copytree(latency_template, playground_home / latency_template.name)


def open_page():
    return open_page_at("views/latency.py")


def table_with(at, column: str):
    """The one table on the page with ``column`` (display tables carry no key)."""
    tables = [frame.value for frame in at.dataframe if column in frame.value.columns]
    assert len(tables) == 1, [list(frame.value.columns) for frame in at.dataframe]
    return tables[0]


def test_empty_runs_root_offers_the_quick_preset_and_its_command(playground_home):
    at = open_page()
    assert any("No latency benchmark run" in i.value for i in at.info)
    assert at.button(key="lat_train").label == "Run the quick preset"
    assert at.code[0].value == "playground run recipes/latency_fashion.toml --preset quick"
    at.number_input(key="lat_threads").set_value(2).run()
    at.multiselect(key="lat_batch_sizes").select(8).run()
    assert not at.exception
    command = at.code[0].value
    assert command.endswith("--preset quick --set 'batch_sizes=[1, 8, 32]' --set threads=2")
    assert not at.get("plotly_chart")


def test_the_variants_picked_are_the_methods_of_the_command(playground_home):
    at = open_page()
    at.multiselect(key="lat_methods").set_value(["ort_fp32", "torch_fp32"]).run()
    assert not at.exception
    assert at.code[0].value.endswith("--set " + shlex.quote('methods=["torch_fp32", "ort_fp32"]'))


def test_the_saved_models_of_a_run_can_be_re_timed(latency_run):
    at = open_page()
    choice = at.selectbox(key="lat_models_from")
    assert choice.value == "" and choice.options[1].startswith("Re-time the saved models of latency")
    choice.select(str(latency_run)).run()
    assert not at.exception
    expected = shlex.quote(f'models_from="{latency_run}"')
    assert at.code[0].value.endswith(f"--set {expected}")


def test_a_run_shows_table_charts_and_the_int8_check(latency_run):
    at = open_page()
    assert not at.exception and not at.error
    assert at.selectbox(key="lat_run").value == latency_run.name
    assert any(m.value.startswith("**Hardware:**") for m in at.markdown)
    table = table_with(at, "throughput")
    assert list(table["variant"]) == VARIANTS and "speedup_vs_torch_fp32" in table
    pareto = plotly_spec(at, "lat_pareto")  # the report's pareto.png, drawn live
    torch, ort, front, *corrupted = pareto["data"]
    assert (torch["name"], ort["name"], front["name"]) == ("PyTorch", "ONNX Runtime", "Pareto front")
    assert sorted([*torch["text"], *ort["text"]]) == sorted(VARIANTS)
    assert pareto["layout"]["xaxis"]["type"] == "log" and "batch 1" in pareto["layout"]["title"]["text"]
    assert pareto["layout"]["xaxis2"]["type"] == "log" and {d["yaxis"] for d in corrupted} == {"y2"}
    bars = plotly_spec(at, "lat_bars")["data"]
    assert [d["name"] for d in bars] == ["p50", "p99"] and list(bars[0]["x"]) == VARIANTS
    assert any("ort_int8_static" in s.value and "QLinearConv" in s.value for s in at.success)
    checks = table_with(at, "int8_evidence")
    assert (
        list(checks["variant"]) == VARIANTS
        and checks.set_index("variant").loc["ort_fp32", "parity"] == "within tolerance"
    )


def test_the_batch_selector_changes_the_table_and_charts(latency_run):
    at = open_page()
    before = plotly_spec(at, "lat_pareto")["data"][0]["x"]
    at.radio(key="lat_batch").set_value(16).run()
    assert not at.exception
    pareto = plotly_spec(at, "lat_pareto")
    assert "batch 16" in pareto["layout"]["title"]["text"] and pareto["data"][0]["x"] != before
    assert "batch 16" in plotly_spec(at, "lat_bars")["layout"]["title"]["text"]
    table = table_with(at, "throughput")
    expected = read_result(latency_run, BENCHMARK)["rows"]
    assert list(table["p50_ms"]) == [r["p50_ms"] for r in expected if r["batch"] == 16]


def test_compares_with_another_run_made_before_the_results_sections(latency_run, playground_home):
    other = shutil.copytree(latency_run, playground_home / "latency-older")
    data = read_result(other, BENCHMARK)
    data["rows"] = [r | {"accuracy": 0.25} for r in data["rows"]]
    (other / "results.json").write_text(json.dumps(data))  # the old layout: the benchmark is the whole file
    at = open_page()
    at.selectbox(key="lat_run").select(latency_run.name).run()
    at.multiselect(key="lat_compare").set_value(["latency-older"]).run()
    assert not at.exception and not at.error
    table = table_with(at, "run")
    assert len(table) == 2 * len(VARIANTS) and set(table["run"]) == {latency_run.name, "latency-older"}
    assert set(table.loc[table["run"] == "latency-older", "accuracy"]) == {0.25}


def test_a_run_without_results_json_is_one_error_line(latency_run):
    (latency_run / "results.json").unlink()
    at = open_page()
    assert not at.exception
    assert len(at.error) == 1 and "results.json" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.get("plotly_chart")


def hand_made_run(folder, legacy: bool):
    """A finished run of hand-made figures: torch_fp32 timed over 10 calls with a wide spread (the quick
    preset on a busy machine), ort_fp32 over 300 quiet calls, torch_fp16 asked for but skipped. ``legacy``:
    the old layout (results.json is the benchmark itself; the skip reason only in report.md)."""
    from tests.latency.test_results import row

    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(
        'experiment = "latency"\n\n[config]\nmethods = ["torch_fp32", "torch_fp16", "ort_fp32"]\n'
    )
    rows = [
        row("torch_fp32", 1, 192.0, 0.9) | {"std_ms": 115.0, "iters": 10, "compat_map_ratio": None},
        row("ort_fp32", 1, 0.563, 0.9, "onnxruntime")
        | {"std_ms": 0.01, "iters": 300, "compat_map_ratio": None},
    ]
    data = {"hardware": {"cpu": "Test CPU"}, "rows": rows, "checks": {}}
    why = "fp16 runs only on a GPU here"
    if legacy:
        (folder / "results.json").write_text(json.dumps(data))
    else:
        RunDir(folder).write_result(BENCHMARK, data | {"skipped": {"torch_fp16": why}})
    (folder / "report.md").write_text(f"# x\n\n## Skipped variants\n\n- torch_fp16: {why}\n")
    (folder / "metrics.json").write_text("{}")
    return folder


@pytest.mark.parametrize("legacy", [False, True], ids=["results", "old-layout"])
def test_a_wide_spread_is_flagged_and_a_skipped_variant_shows_its_reason(playground_home, legacy):
    hand_made_run(playground_home / "latency-handmade", legacy)
    at = open_page()
    assert not at.exception and not at.error
    (warning,) = [w.value for w in at.warning if "cannot be trusted" in w.value]
    assert "p50 of torch_fp32 (std/p50 0.60, 10 calls)" in warning
    assert "speed-ups over torch_fp32 of ort_fp32 (the baseline is flagged)" in warning
    assert "--preset full" in warning and "--threads" in warning
    table = table_with(at, "throughput").set_index("variant")
    assert "accuracy" in table and "compat_map_ratio" not in table  # a column nothing measured is left out
    assert table.loc["torch_fp32", "trust"] == "⚠ std/p50 0.60, 10 calls"
    assert table.loc["ort_fp32", "trust"] == "⚠ speed-up: flagged baseline"
    assert table.loc["ort_fp32", "speedup_vs_torch_fp32"] == 341.03  # the figure stays, flagged
    (skipped,) = [i.value for i in at.info if "Asked for but not run" in i.value]
    assert "**torch_fp16**: fp16 runs only on a GPU here" in skipped


def test_your_own_model_puts_the_model_and_folders_into_the_command(playground_home):
    at = open_page()
    at.toggle(key="lat_own").set_value(True).run()
    assert not at.exception
    at.text_input(key="lat_model").set_value("torchvision:resnet18").run()
    at.text_input(key="lat_calibration_dir").set_value("/data/my images").run()
    at.number_input(key="lat_max_drop").set_value(0.5).run()
    assert not at.exception and not at.error
    command = shlex.split(at.code[0].value)
    assert 'model="torchvision:resnet18"' in command and 'calibration_dir="/data/my images"' in command
    assert "max_drop=0.5" in command
    assert at.number_input(key="lat_width").disabled  # the project's CNN settings do not apply
    at.toggle(key="lat_own").set_value(False).run()
    assert not any(part.startswith("model=") for part in shlex.split(at.code[0].value))


def test_a_misspelt_model_or_missing_file_is_an_error_before_any_job(playground_home):
    at = open_page()
    at.toggle(key="lat_own").set_value(True).run()
    at.text_input(key="lat_model").set_value("torchvision:resnet5").run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "unknown torchvision model 'resnet5'; did you mean torchvision:resnet50" in error
    assert not at.code and not [b for b in at.button if b.key == "lat_train"]  # nothing to run
    at.text_input(key="lat_model").set_value(str(playground_home / "absent.onnx")).run()
    assert any("absent.onnx does not exist" in e.value for e in at.error)
    at.text_input(key="lat_model").set_value("timm:mobilenetv3_large_100").run()
    assert not at.error and at.code
