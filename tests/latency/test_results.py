"""Reading a latency run back: its results section, an old run's results.json (the legacy layout), a damaged
one, the helpers on top."""

from __future__ import annotations

import json
import math

import pytest

from playground.core.runs import RunDir
from playground.errors import DataFormatError, DataNotFoundError
from playground.latency import results as lat


def row(variant: str, batch: int, p50: float, accuracy: float, backend: str = "torch") -> dict:
    return {
        "variant": variant,
        "backend": backend,
        "precision": "fp32",
        "batch": batch,
        "iters": 5,
        "p50_ms": p50,
        "p90_ms": p50 * 1.1,
        "p99_ms": p50 * 1.2,
        "mean_ms": p50,
        "std_ms": 0.01,
        "throughput": batch / p50 * 1e3,
        "accuracy": accuracy,
        "ood_accuracy": accuracy - 0.2,
        "far_agreement": 0.9,
        "size_mb": 1.0,
        "peak_mb": 2.0,
    }


RESULTS = {
    "hardware": {
        "cpu": "Test CPU",
        "logical_cores": 2,
        "torch_threads": 1,
        "torch_version": "2.x",
        "cpu_flags": {"avx2": True, "avx512_bf16": False},
    },
    "rows": [
        row("torch_fp32", 1, 1.5, 0.90),
        row("torch_fp32", 16, 20.0, 0.90),
        row("ort_fp32", 1, 2.0, 0.90, "onnxruntime"),
        row("ort_fp32", 16, 15.0, 0.90, "onnxruntime"),
        row("ort_int8_static", 1, 2.5, 0.89, "onnxruntime"),
        row("ort_int8_static", 16, 10.0, 0.89, "onnxruntime"),
        row("student_kd", 16, 4.0, 0.80),
    ],
    "checks": {
        "torch_fp32": {"max_abs_diff": 0.0, "argmax_agreement": 1.0, "parity_ok": True, "ran_int8": None},
        "ort_int8_static": {
            "max_abs_diff": 0.4,
            "argmax_agreement": 0.99,
            "parity_ok": True,
            "ran_int8": True,
            "int8_evidence": "ORT ran 4 QLinearConv",
            "notes": "",
        },
    },
}


def write_run(folder, experiment: str = "latency", results: dict | None = RESULTS):
    """A run folder as runs made before the one results file: ``results.json`` is the benchmark itself."""
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'experiment = "{experiment}"\n\n[config]\nname = "x"\n')
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_a_run_keeps_the_benchmark_as_a_results_section_and_an_old_run_still_opens(tmp_path):
    new = write_run(tmp_path / "latency-new", results=None)
    RunDir(new).write_result(lat.BENCHMARK, RESULTS)
    RunDir(new).write_result("other", {"x": 1})  # another section beside it changes nothing
    assert lat.load_results(new) == RESULTS | {"skipped": {}}
    old = write_run(tmp_path / "latency-old")  # no "format": the whole file is the old layout
    assert lat.load_results(old) == RESULTS | {"skipped": {}}
    without = write_run(tmp_path / "latency-other", results=None)
    RunDir(without).write_result("other", {"x": 1})
    with pytest.raises(DataNotFoundError, match="no 'benchmark' results in results.json"):
        lat.load_results(without)


def test_finds_only_latency_runs_and_reads_them_back(tmp_path):
    write_run(tmp_path / "classify-1", "classify")
    run = write_run(tmp_path / "latency-1")
    assert [info.name for info in lat.find_latency_runs(tmp_path)] == ["latency-1"]
    results = lat.load_results(run)
    assert results["rows"] == RESULTS["rows"] and lat.batch_sizes(results) == [1, 16]
    assert "Test CPU" in lat.hardware_line(results["hardware"]) and "avx2" in lat.hardware_line(
        results["hardware"]
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no 'benchmark' results in results.json"),
        ("{not json", "not valid JSON"),
        ('{"rows": []}', "no result rows"),
        ('{"rows": [{"variant": "torch_fp32"}]}', "without batch"),
        (json.dumps(RESULTS | {"skipped": ["torch_fp16"]}), "'skipped' must be objects"),
    ],
)
def test_missing_or_damaged_results_raise_clear_errors(tmp_path, text, message):
    run = write_run(tmp_path / "latency-1", results=None)
    if text is not None:
        (run / "results.json").write_text(text)
    with pytest.raises(DataNotFoundError if text is None else DataFormatError, match=message):
        lat.load_results(run)


def test_table_at_a_batch_pareto_front_checks_and_flags():
    frame = lat.at_batch(RESULTS, 16)
    assert list(frame["variant"]) == ["torch_fp32", "ort_fp32", "ort_int8_static", "student_kd"]
    assert list(frame["speedup_vs_torch_fp32"]) == [1.0, 1.33, 2.0, 5.0]
    assert lat.pareto_front(frame) == ["student_kd", "ort_int8_static", "ort_fp32"]
    assert lat.pareto_front(frame, "ood_accuracy") == ["student_kd", "ort_int8_static", "ort_fp32"]
    assert lat.int8_verdicts(RESULTS) == [("ort_int8_static", True, "ORT ran 4 QLinearConv")]
    assert list(lat.checks_frame(RESULTS)["variant"]) == ["torch_fp32", "ort_int8_static"]
    assert lat.slow_flags(RESULTS, 16) == []
    (flag,) = lat.slow_flags(RESULTS, 1)  # int8 2.5 ms against ort_fp32 2.0 ms
    assert (flag["variant"], flag["counterpart"], flag["p50_ms"]) == ("ort_int8_static", "ort_fp32", 2.5)
    assert flag["reason"]
    assert "overhead" in lat.overhead_note(RESULTS, 1)  # fp32 at 1.5 ms: under report.OVERHEAD_MS
    assert lat.overhead_note(RESULTS, 16) == ""


def test_compare_puts_each_variant_of_every_run_together():
    other = json.loads(json.dumps(RESULTS))
    other["rows"] = [r | {"accuracy": 0.5} for r in other["rows"]]
    table = lat.compare_frame({"new": RESULTS, "old": other}, batch=1)
    assert list(table.columns) == ["variant", "run", "p50_ms_b1", "accuracy"]
    assert list(table["variant"][:2]) == ["ort_fp32", "ort_fp32"] and list(table["run"][:2]) == ["new", "old"]
    kd = table[table["variant"] == "student_kd"]
    assert len(kd) == 2 and all(math.isnan(v) for v in kd["p50_ms_b1"])  # measured at batch 16 only
    assert set(table.loc[table["run"] == "old", "accuracy"]) == {0.5}


def test_skipped_variants_come_from_the_results_else_the_report_else_the_config(tmp_path):
    asked = (
        'experiment = "latency"\n\n[config]\nmethods = ["torch_fp32", "torch_fp16", "ort_fp32", "ort_fp16"]\n'
    )
    new = write_run(tmp_path / "latency-new", results=None)
    (new / "config.toml").write_text(asked)
    RunDir(new).write_result(lat.BENCHMARK, RESULTS | {"skipped": {"torch_fp16": "fp16 needs a GPU"}})
    results = lat.load_results(new)
    assert results["skipped"] == {"torch_fp16": "fp16 needs a GPU"}
    assert lat.skipped_variants(new, results) == {"torch_fp16": "fp16 needs a GPU", "ort_fp16": lat.NO_REASON}
    old = write_run(tmp_path / "latency-old")  # the old layout, its reasons only in report.md
    (old / "config.toml").write_text(asked.replace("methods", "variants"))  # the key's old name
    (old / "report.md").write_text(
        "# x\n\n## Flags\n\n- a: b\n\n## Skipped variants\n\n"
        "- torch_fp16: ConfigError: fp16: needs CUDA\n- ort_fp16: no fp16 Conv\n\n## Later\n\n- c: d\n"
    )
    assert lat.skipped_variants(old, lat.load_results(old)) == {
        "torch_fp16": "ConfigError: fp16: needs CUDA",
        "ort_fp16": "no fp16 Conv",
    }
    (old / "report.md").write_text("# x\n\n## Skipped variants\n\nnone\n")
    (old / "config.toml").write_text('experiment = "latency"\n\n[config]\nname = "x"\n')  # nothing asked
    assert lat.skipped_variants(old, lat.load_results(old)) == {}
    (old / "config.toml").write_text("not [ toml")  # a damaged config names nothing, raises nothing
    assert lat.skipped_variants(old, lat.load_results(old)) == {}
