import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli import main
from tests.conftest import REPO

RECIPE = str(REPO / "recipes" / "classify_fashion.toml")
TINY = ["--set", "dataset=digits", "--set", "epochs=1", "--set", "width=8", "--set", "pool_size=1", "--quiet"]


def test_run_prints_the_run_directory_and_runs_lists_it(capsys, playground_home):
    assert main(["run", RECIPE, *TINY, "--seed", "3"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(str(playground_home / "classify_fashion-"))
    assert "seed = 3" in open(f"{out}/config.toml").read()
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "classify_fashion-" in listing and "classify" in listing and "accuracy=" in listing
    assert main(["runs", out.rsplit("/", 1)[-1]]) == 0
    assert "Accuracy per class" in capsys.readouterr().out


def test_run_with_several_seeds(capsys, tmp_path):
    assert main(["run", RECIPE, *TINY, "--seeds", "0,1", "--out", str(tmp_path / "elsewhere")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(str(tmp_path / "elsewhere"))
    assert "test/accuracy:std" in open(f"{out}/metrics.json").read()


BENCH_TINY = [
    "--set",
    "dataset=digits",
    "--set",
    "width=8",
    "--set",
    "depth=2",
    "--set",
    "pool_size=2",
    "--set",
    "epochs=1",
    "--set",
    "bench.warmup=1",
    "--set",
    "bench.min_iters=3",
    "--set",
    "bench.min_seconds=0.0",
    "--set",
    "calibration_images=64",
    "--quiet",
]


def test_latency_trains_once_then_re_times_the_saved_models_and_bench_is_its_old_name(capsys, tmp_path):
    argv = [
        "bench",
        *BENCH_TINY,
        "--methods",
        "torch_fp32,ort_fp32",
        "--batch-sizes",
        "1,4",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    first = capsys.readouterr()
    run_dir = first.out.strip()
    assert (
        "bench/ort_fp32/b4/p50_ms" in first.err
        and (Path(run_dir) / "models" / "benchmark_cnn.safetensors").is_file()
    )
    assert 'methods = ["torch_fp32", "ort_fp32"]' in open(f"{run_dir}/config.toml").read()
    old_flag = ["--variants" if arg == "--methods" else arg for arg in argv]  # the flag's name before
    assert main(old_flag + ["--models-from", run_dir]) == 0
    second = capsys.readouterr().out.strip()
    config = open(f"{second}/config.toml").read()
    assert 'models_from = "' in config and "threads = 1" in config
    assert 'methods = ["torch_fp32", "ort_fp32"]' in config
    assert main(["latency", "--batch-sizes", "1,x", "--quiet"]) == 2
    assert "--batch-sizes takes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", RECIPE, "--set", "epochz=1"], "unknown key 'epochz'"),
        (["run", RECIPE, "--preset", "huge"], "no preset 'huge'"),
        (["run", "recipes/nope.toml"], "does not exist"),
        (["run", RECIPE, "--set", "dataset=folder"], "needs data_root"),
        (["run", RECIPE, "--seeds", "a,b"], "--seeds takes"),
        (["runs", "no-such-run"], "does not exist"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(capsys, argv, fragment):
    assert main(argv + ["--quiet"] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def test_missing_dataset_is_one_line_error(monkeypatch, capsys, tmp_path):
    import playground.data.fashion as fashion

    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "nothing")
    assert main(["run", RECIPE, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err and "apt-get install dataset-fashion-mnist" in err
    assert err.count("\n") == 1


def test_data_command_and_fast_help():
    out = subprocess.run(
        [sys.executable, "-m", "playground.cli", "data"], capture_output=True, text=True, check=True
    ).stdout
    assert "digits" in out and "shapes" in out and "fashion_mnist" in out
    probe = "import sys, playground.cli as c; c.build_parser(); print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
        == "False"
    )


def test_library_never_imports_streamlit():
    offenders = [
        p
        for p in (REPO / "playground").rglob("*.py")
        if "import streamlit" in p.read_text() or "from streamlit" in p.read_text()
    ]
    assert offenders == []
