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
    assert listing.split()[2] == "complete"
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
        (["run", RECIPE, "--set", "lr=nan"], "lr must be a finite number, got nan"),
        (["run", RECIPE, "--set", "epochs=" + "[" * 1000 + "]" * 1000], "nested more than 16 levels"),
        (["run", RECIPE, "--set", "name=a\nb"], "without line breaks"),
        (["runs", "no-such-run"], "does not exist"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(capsys, argv, fragment):
    assert main(argv + ["--quiet"] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def _never(*args, **kwargs):
    raise AssertionError("loaded data although the output folder cannot be written")


@pytest.mark.parametrize(
    ("argv", "blocked"),
    [
        (["run", RECIPE, "--out", "{file}"], "classify"),
        (["run", RECIPE, "--seeds", "0,1", "--out", "{file}/runs"], "classify"),
        (["run", RECIPE, "--set", "name=../../escape"], "classify"),
        (["latency", "--out", "{file}"], "latency"),
        (["backfill", "{tmp}", "--transformation", "{tmp}/h.safetensors", "--out", "{file}/new"], "backfill"),
        (["gallery", "create", "{file}", "--run", "{tmp}", "--images", "{tmp}"], "gallery"),
    ],
)
def test_an_output_folder_that_cannot_be_written_fails_before_any_data_loads(
    capsys, monkeypatch, tmp_path, argv, blocked
):
    import playground.classify.experiment as classify
    import playground.fct.gallery as gallery
    import playground.fct.versions as versions
    import playground.latency.experiment as latency

    for module, name in ((classify, "load"), (latency, "load"), (gallery.GalleryStore, "open")):
        monkeypatch.setattr(module, name, _never)
    monkeypatch.setattr(versions.ModelPack, "load", _never)
    (tmp_path / "a-file").write_text("in the way")
    argv = [arg.format(file=tmp_path / "a-file", tmp=tmp_path) for arg in argv]
    assert main(argv + (["--quiet"] if blocked in ("classify", "latency") else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert (
        "cannot name a run folder" in err if "name=" in argv[-1] else "a-file is a file, not a folder" in err
    )


def test_a_decompression_bomb_in_a_folder_dataset_is_one_error_line(capsys, tmp_path):
    from tests.data.test_image_file import header_png
    from tests.data.test_loaders import make_folder

    root = make_folder(tmp_path / "pets")
    (root / "cat" / "bomb.png").write_bytes(header_png(30000, 30000))
    argv = ["run", RECIPE, "--set", "dataset=folder", "--set", f"data_root={root}", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"error: {root / 'cat' / 'bomb.png'} cannot be read as an image"
    )
    assert "too many pixels" in err


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


def test_runs_lists_each_runs_status_then_the_reference_runs(capsys, playground_home, tmp_path, monkeypatch):
    from tests.apps.test_runs_page import CLASSIFY, RUNNING, fake_run

    fake_run(playground_home, "busy", "fct", "running", progress=RUNNING)
    fake_run(playground_home, "broken", "fct", "failed", age=20, error="CUDA out of memory")
    fake_run(playground_home, "gone", "classify", "running", age=3600)
    fake_run(playground_home, "done", "classify", "complete", CLASSIFY, age=3700)
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(tmp_path / "reference"))
    fake_run(tmp_path / "reference", "shipped", "classify", "complete", CLASSIFY)
    assert main(["runs"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [line[:3] for line in lines] == [
        ["busy", "fct", "running"],
        ["broken", "fct", "failed"],
        ["gone", "classify", "interrupted"],
        ["done", "classify", "complete"],
        ["shipped", "classify", "complete"],
    ]
    assert lines[0][3] == "40%" and "train" in lines[0]
    assert lines[1][3:] == ["CUDA", "out", "of", "memory"]
    assert lines[3][3:] == ["test/accuracy=0.91", "test/loss=0.3"] and "reference" not in lines[3]
    assert lines[4][3:] == ["reference", "test/accuracy=0.91", "test/loss=0.3"]


def test_runs_lists_sweeps_after_the_users_runs_with_their_trials(
    capsys, playground_home, tmp_path, monkeypatch
):
    import json

    from tests.apps.test_runs_page import CLASSIFY, fake_run

    fake_run(playground_home, "done", "classify", "complete", CLASSIFY)
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(tmp_path / "reference"))
    fake_run(tmp_path / "reference", "shipped", "classify", "complete", CLASSIFY)
    sweep = playground_home / "sweep-classify_fashion-quick"
    sweep.mkdir()
    ledger = {"a": {"status": "done"}, "b": {"status": "done"}, "c": {"status": "failed", "error": "x"}}
    (sweep / "trials.json").write_text(json.dumps(ledger))
    (playground_home / "damaged").mkdir()
    (playground_home / "damaged" / "trials.json").write_text("[not a ledger")
    assert main(["runs"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [line[0] for line in lines] == ["done", "damaged", "sweep-classify_fashion-quick", "shipped"]
    assert lines[2][1:] == ["sweep", "unfinished", "2", "trials", "done,", "1", "failed"]
    (sweep / "metrics.json").write_text('{"metrics": {}, "units": {}}')  # what run_sweep writes last
    (sweep / "report.md").write_text("# Sweep: 3 trials\n")
    assert main(["runs"]) == 0
    assert "sweep-classify_fashion-quick sweep complete" in " ".join(capsys.readouterr().out.split())
    assert main(["runs", "sweep-classify_fashion-quick"]) == 0
    assert capsys.readouterr().out.startswith("# Sweep: 3 trials")


def test_runs_name_shows_a_reference_run_or_why_a_run_has_no_report(
    capsys, playground_home, tmp_path, monkeypatch
):
    from tests.apps.test_runs_page import CLASSIFY, fake_run

    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(tmp_path / "reference"))
    fake_run(tmp_path / "reference", "shipped", "classify", "complete", CLASSIFY)
    fake_run(playground_home, "broken", "fct", "failed", error="CUDA out of memory")
    assert main(["runs", "shipped"]) == 0
    assert capsys.readouterr().out.startswith("# shipped: the report")
    assert main(["runs", "broken"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{playground_home / 'broken'}: failed: CUDA out of memory",
        "no report; the run folder holds: config.toml, status.json",
    ]


def test_runs_without_any_says_how_to_start_one(capsys, playground_home):
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"no runs under {playground_home} yet") and out.count("\n") == 1
    assert "`playground run recipes/classify_fashion.toml`" in out
