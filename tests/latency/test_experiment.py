"""The latency benchmark end to end on digits with the fast variants (tiny models, short timings)."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from playground.core.config import build_config, config_to_toml, tomllib
from playground.core.runner import config_from_recipe
from playground.core.runs import RESULTS_FORMAT, load_run, read_result
from playground.errors import ConfigError
from playground.latency import experiment, project_model
from playground.latency.evaluation import EvalSet, reference_of
from playground.latency.experiment import Bench, Config, run
from playground.latency.pruning import PruneSpec
from playground.latency.results import BENCHMARK
from playground.latency.variants import VARIANTS
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "latency_fashion.toml"
FAST = [
    "torch_fp32",
    "torch_bf16",
    "ort_fp32",
    "ort_int8_static",
    "pruned50",
    "pruned50_kd",
    "student_scratch",
    "student_kd",
]
TINY = dict(
    dataset="digits",
    width=8,
    depth=2,
    pool_size=2,
    embedding_dim=32,
    epochs=4,
    batch_size=32,
    student_width=4,
    methods=FAST,
    batch_sizes=[1, 16],
    bench=Bench(warmup=2, min_iters=5, min_seconds=0.0, max_seconds=1.0),
    calibration_images=128,
    prune=PruneSpec(steps=1),
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("runs"))))


def test_every_fast_variant_is_measured_with_the_issue_metric_names(tiny_run):
    values = tiny_run.metrics.values
    for name in FAST:
        for batch in (1, 16):
            assert values[f"bench/{name}/b{batch}/p50_ms"] <= values[f"bench/{name}/b{batch}/p99_ms"]
        for key in ("accuracy", "ood_accuracy", "size_mb", "far_agreement"):
            assert f"bench/{name}/{key}" in values, (name, key)
    assert values["bench/torch_fp32/accuracy"] > 0.8
    assert (
        values["bench/ort_fp32/parity/max_abs_diff"] < 1e-3 and values["bench/ort_fp32/far_agreement"] > 0.99
    )
    assert values["bench/ort_int8_static/ran_int8"] == 1.0
    assert values["bench/ort_int8_static/size_mb"] < values["bench/ort_fp32/size_mb"]
    assert abs(values["bench/ort_int8_static/accuracy"] - values["bench/torch_fp32/accuracy"]) < 0.05
    assert "bench/ort_fp32/b1/speedup_vs_torch_fp32" in values
    teacher_macs = values["bench/torch_fp32/macs"]
    assert values["bench/ort_int8_static/macs"] == teacher_macs  # the same network, run another way
    assert values["bench/pruned50/macs"] <= 0.6 * teacher_macs  # the 50%-MAC target, within a step
    assert values["bench/student_kd/macs"] == values["bench/student_scratch/macs"] < 0.5 * teacher_macs
    assert values["bench/pruned50/params"] < values["bench/torch_fp32/params"]
    # FCT compatibility: the compressed embedders search the fp32 gallery (the students are other models)
    assert values["bench/torch_fp32/compat_map_ratio"] == 1.0
    assert 0.9 < values["bench/ort_int8_static/compat_map_ratio"] < 1.05
    assert 0.9 < values["bench/torch_bf16/compat_map_ratio"] < 1.05
    assert "bench/student_kd/compat_map" not in values and "bench/ort_fp32/compat_map" not in values
    assert "## FCT compatibility of the compressed embedder" in tiny_run.report


def test_metric_records_carry_the_split_and_the_variant_batch_and_measure_tags(tiny_run):
    measured = load_run(tiny_run.run_dir).measured  # as written to metrics.json
    (p50,) = measured.select(split="", variant="ort_fp32", batch_size=16, measure="p50_ms")
    assert p50.name == "bench/ort_fp32/b16/p50_ms" and p50.unit == "ms"
    accuracy = measured.select(split="test", measure="accuracy")
    assert {r.tags["variant"] for r in accuracy} == set(FAST)
    (corrupted,) = measured.select(variant="torch_fp32", measure="ood_accuracy")
    assert corrupted.split == "test_corrupted"
    (speedup,) = measured.select(variant="ort_fp32", batch_size=1, reference="torch_fp32", measure="speedup")
    assert speedup.name == "bench/ort_fp32/b1/speedup_vs_torch_fp32"
    assert {r.tags["batch_size"] for r in measured.select(variant="torch_fp32", measure="throughput")} == {
        1,
        16,
    }
    assert all(r.tags.get("variant") and r.tags.get("measure") for r in measured.records())


def test_a_second_run_re_times_the_saved_models_without_training(tiny_run, tmp_path):
    names = {p.stem for p in (tiny_run.run_dir / "models").glob("*.safetensors")}
    assert names == {"benchmark_cnn", "pruned50", "pruned50_kd", "student_scratch", "student_kd"}
    variants, stages = ["torch_fp32", "pruned50", "student_kd"], []
    again = run(
        Config(
            **{**TINY, "methods": variants},
            models_from=str(tiny_run.run_dir),
            out=str(tmp_path),
            save_models=False,
        ),
        progress=lambda event: stages.append(event.stage),
    )
    assert not any("train" in stage or "round" in stage for stage in stages), stages
    for name in variants:  # the same weights: the same predictions, so the same accuracies
        key = f"bench/{name}/accuracy"
        assert again.metrics.values[key] == tiny_run.metrics.values[key]
    teacher_only = run(
        Config(
            **{**TINY, "methods": ["torch_fp32", "student_scratch"], "seed": 1},
            models_from=str(tiny_run.run_dir),
            reuse="teacher",
            out=str(tmp_path),
        )
    )
    saved, reused = (
        load_file(str(r.run_dir / "models" / "benchmark_cnn.safetensors")) for r in (tiny_run, teacher_only)
    )
    assert all(torch.equal(saved[key], reused[key]) for key in saved)  # the teacher was loaded, not retrained
    students = (
        load_file(str(r.run_dir / "models" / "student_scratch.safetensors")) for r in (tiny_run, teacher_only)
    )
    first, second = students
    assert not all(
        torch.equal(first[key], second[key]) for key in first
    )  # the student was trained anew (seed 1)


def test_artifacts_csv_results_section_charts_and_report(tiny_run):
    folder = tiny_run.run_dir
    with open(folder / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["variant"] for r in rows} == set(FAST) and {r["batch"] for r in rows} == {"1", "16"}
    assert json.loads((folder / "results.json").read_text())["format"] == RESULTS_FORMAT
    data = read_result(folder, BENCHMARK)
    assert [(r["variant"], r["batch"]) for r in data["rows"]] == [
        (r["variant"], int(r["batch"])) for r in rows
    ]
    assert "cpu_flags" in data["hardware"] and data["checks"]["ort_int8_static"]["ran_int8"] is True
    assert "QLinearConv" in data["checks"]["ort_int8_static"]["int8_evidence"]
    for name, check in data["checks"].items():  # an explanation exactly where parity failed
        assert (check["explanation"] is not None) == (check["parity_ok"] is False), name
    assert (folder / "pareto.png").is_file() and (folder / "latency.png").is_file()
    report = tiny_run.report
    assert "![Pareto](pareto.png)" in report and "![Latency](latency.png)" in report
    assert "## Checks" in report and "Hardware:" in report and "ONNX export: dynamo" in report
    assert "ONNX round trip" in report  # the pruned model runs in ORT too
    assert data["skipped"] == {} and "## Skipped variants\n\nnone" in report
    # 5 timed calls per figure (TINY's bench): every latency is flagged, in the warning and the table
    assert "cannot be trusted" in report and "| variant | trust | backend |" in report
    assert "| torch_fp32 | ⚠ b1: " in report and "5 calls" in report


@pytest.mark.parametrize(
    "values, message",
    [
        ({"methods": ["ort_fp32"]}, "torch_fp32"),
        ({"methods": ["torch_fp32", "tensorrt"]}, r"methods: unknown 'tensorrt'; valid: torch_fp32, "),
        ({"batch_sizes": [0]}, "batch_sizes"),
        ({"prune": {"target": 1.2}}, "prune.target"),
        ({"prune": {"importance": "random"}}, "importance"),
        ({"kd_alpha": 2.0}, "alpha"),
        ({"bench": {"min_seconds": 5.0, "max_seconds": 1.0}}, "max_seconds"),
        ({"bench": {"threads": 2}}, "set threads"),
        ({"compat_images": -1}, "compat_images must be >= 0"),
        ({"model": "torchvision:resnet5"}, "did you mean torchvision:resnet50"),
    ],
)
def test_bad_configs_are_clear_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Config, values)


def test_recipe_presets_parse():
    _, quick = config_from_recipe(RECIPE, "quick", [])
    _, full = config_from_recipe(RECIPE, "full", [])
    assert quick.train_limit and full.train_limit == 0 and full.bench.min_iters >= quick.bench.min_iters
    assert (quick.prune.steps, full.prune.steps, full.prune.target) == (1, 2, 0.5)
    assert "ort_int8_static" in full.methods and "student_kd" in full.methods


def test_students_learn_from_the_transfer_set_and_the_report_states_the_kd_gain(tiny_run, tmp_path):
    seen = []
    result = run(
        Config(
            **{**TINY, "methods": ["torch_fp32", "student_scratch", "student_kd"]},
            models_from=str(tiny_run.run_dir),
            reuse="teacher",
            student_train_limit=200,
            student_epochs=2,
            out=str(tmp_path),
            save_models=False,
        ),
        progress=lambda event: seen.append((event.stage, event.epoch, event.total)),
    )
    student_epochs = {epoch for stage, epoch, _ in seen if stage.startswith("student (scratch)") and epoch}
    assert student_epochs == {1, 2}
    batches = {total for stage, _, total in seen if stage == "student (KD): train"}
    assert batches == {200 // TINY["batch_size"]}  # 200 images, not the whole training set
    values = result.metrics.values
    gain = 100 * (values["bench/student_kd/accuracy"] - values["bench/student_scratch/accuracy"])
    assert (
        "on 200 training images for 2 epochs" in result.report and f"**{gain:+.2f} points**" in result.report
    )
    with pytest.raises(ConfigError, match="student_train_limit"):
        Config(student_train_limit=-1)


def prune_and_time(config: Config, monkeypatch) -> dict:
    """The pruning and timing specs ``prune`` and ``measure`` hand on (no model is pruned or timed)."""
    seen = {}
    monkeypatch.setattr(
        project_model, "prune_to_target", lambda model, example, spec, **_: seen.update(prune=spec)
    )
    monkeypatch.setattr(
        experiment, "batch_sweep", lambda run, images, batches, spec, *_: seen.update(bench=spec)
    )
    monkeypatch.setattr(experiment, "measure_peak_memory", lambda run, images, *_: 0.0)
    images, labels = torch.zeros(8, 1, 4, 4), torch.zeros(8, dtype=torch.long)
    data = SimpleNamespace(images=images, labels=labels)
    project_model.prune(config, torch.nn.Linear(1, 1), data, "cpu", None)
    variant = SimpleNamespace(name="torch_fp32", backend="torch", run=lambda x: torch.rand(len(x), 10))
    evaluation = EvalSet(images, labels, images, images, images)
    experiment.measure(config, variant, evaluation, reference_of(variant.run, evaluation))
    return seen


def test_set_prune_and_bench_keys_reach_the_pruner_and_the_timer(monkeypatch):
    overrides = ["prune.target=0.3", "prune.importance=lamp", "bench.min_iters=7", "threads=2"]
    _, config = config_from_recipe(RECIPE, "quick", overrides)
    seen = prune_and_time(config, monkeypatch)
    assert seen["prune"] is config.prune and (seen["prune"].target, seen["prune"].importance) == (0.3, "lamp")
    assert seen["prune"].steps == 1  # the rest of the quick preset's [prune] table stays
    assert (seen["bench"].min_iters, seen["bench"].warmup, seen["bench"].threads) == (7, 3, 2)


def test_old_flat_keys_still_work_in_recipes_overrides_and_old_run_configs(tmp_path, capsys):
    recipe = tmp_path / "old_latency.toml"
    recipe.write_text(
        'experiment = "latency"\n[config]\nprune_target = 0.4\nprune_steps = 3\nwarmup = 4\n'
        "[presets.quick]\nmin_iters = 6\nprune_finetune_epochs = 2\n"
    )
    _, config = config_from_recipe(recipe, "quick", ["max_seconds=2.5", "prune_importance=taylor"])
    assert config.prune == PruneSpec(target=0.4, importance="taylor", steps=3, finetune_epochs=2)
    assert config.bench == Bench(warmup=4, min_iters=6, max_seconds=2.5)
    assert "prune_target in recipe" in capsys.readouterr().err
    old = tomllib.loads(config_to_toml(Config()))["config"]  # a run's config.toml before the sections:
    del old["prune"], old["bench"]
    old.update(prune_target=0.5, prune_importance="magnitude", prune_steps=2, prune_finetune_epochs=1)
    old.update(warmup=10, min_iters=50, min_seconds=1.0, max_seconds=20.0)
    assert build_config(Config, old, "old run") == Config()


def test_methods_picks_the_variants_in_their_order_empty_means_all_and_the_old_key_still_works(
    tmp_path, capsys
):
    _, config = config_from_recipe(RECIPE, "quick", ['methods=["ort_int8_static", "torch_fp32"]'])
    assert config.methods == ["torch_fp32", "ort_int8_static"]  # VARIANTS order: the reference first
    assert Config(methods=[]).methods == list(VARIANTS) == Config().methods
    assert capsys.readouterr().err == ""
    _, config = config_from_recipe(RECIPE, "quick", ['variants=["torch_fp32", "ort_fp32"]'])
    assert config.methods == ["torch_fp32", "ort_fp32"]
    assert "note: variants in --set" in capsys.readouterr().err
    recipe = tmp_path / "old_latency.toml"
    recipe.write_text('experiment = "latency"\n[config]\nvariants = ["torch_fp32", "student_kd"]\n')
    _, config = config_from_recipe(recipe, None, [])
    assert config.methods == ["torch_fp32", "student_kd"]
    assert "variants in recipe" in capsys.readouterr().err
    old = tomllib.loads(config_to_toml(Config(methods=["torch_fp32", "ort_fp32"])))["config"]
    old["variants"] = old.pop("methods")  # a run's config.toml before the rename
    assert build_config(Config, old, "old run").methods == ["torch_fp32", "ort_fp32"]


def test_torch_variants_are_timed_on_the_runs_device_and_the_rest_on_the_cpu():
    def variant(name, backend):
        return SimpleNamespace(name=name, backend=backend)

    assert experiment.timing_device(variant("torch_fp16", "torch"), "cuda") == "cuda"
    assert experiment.timing_device(variant("torch_int8", "torch"), "cuda") == "cpu"  # PT2E is CPU-only
    assert experiment.timing_device(variant("ort_fp32", "onnxruntime"), "cuda") == "cpu"
    assert experiment.timing_device(variant("torch_fp32", "torch"), "cpu") == "cpu"
