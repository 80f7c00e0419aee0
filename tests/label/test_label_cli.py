"""Tests for ``playground label init|round|retrain|status|export`` end to end on a tiny folder, with
their exit codes and one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from playground.cli import main
from playground.store import Store
from tests.label.conftest import label_queue

TINY = [
    f"--set={pair}"
    for pair in (
        "image_size=16",
        "budget=20",
        "seed_size=10",
        "min_calibration=10",
        "train.width=8",
        "train.min_steps=20",
        "train.max_steps=40",
        "train.finetune_steps=10",
    )
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["label", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def init(capsys, folder, *extra: str) -> tuple[int, str, str]:
    return run(
        capsys, "init", "shapes", "--images", str(folder), "--classes", "red, green ,blue", *TINY, *extra
    )


def test_init_round_retrain_status_and_export_end_to_end(capsys, image_folder, playground_home, tmp_path):
    code, out, _ = init(capsys, image_folder)
    assert code == 0
    assert "project shapes: 90 images added, 0 labelled ones" in out
    assert "  skipped empty.png: empty file" in out and "  skipped notes.txt: not an image" in out
    assert out.rstrip().endswith("next: playground label round shapes")
    code, out, _ = run(capsys, "round", "shapes")
    assert code == 0 and "round 1 (model v0): pool 90, labelled 0, seed 10, calibration 4" in out
    with Store() as store:  # the store under PLAYGROUND_HOME, as the Annotate page uses it
        assert len(label_queue(store, "shapes")) == 14
    code, out, _ = run(capsys, "retrain", "shapes")
    assert code == 0
    assert re.search(r"^shapes v1: 10 labels, held-out accuracy [01]\.\d{3} \(.*v1\)$", out, re.M), out
    assert (playground_home / "label" / "shapes" / "v1" / "member0.safetensors").is_file()
    code, out, _ = run(capsys, "round", "shapes", "--version", "1", "--order", "random", "--seed", "2")
    assert code == 0 and out.startswith("round 2 (model v1): pool 90, labelled 14, auto 0, escalate 16")
    code, out, _ = run(capsys, "status", "shapes")
    assert code == 0
    assert out.startswith("shapes: 90 images, 14 labelled by people, 0 awaiting a reviewer; queue 20 open")
    assert "  round 2 (v1, complete): pool 90" in out and "  v1: 10 labels, held-out accuracy " in out
    code, out, _ = run(capsys, "status", "--json")
    [summary] = json.loads(out)
    assert (summary["project"], summary["pool"], len(summary["rounds"])) == ("shapes", 90, 2)
    for kind, name in (
        ("csv", "new/labels.csv"),
        ("json", "labels.json"),
        ("folder", "tree"),
    ):  # folders made
        code, out, _ = run(capsys, "export", "shapes", "--format", kind, "--out", str(tmp_path / name))
        assert code == 0 and out.strip() == f"wrote {tmp_path / name}"
    rows = list(csv.DictReader((tmp_path / "new" / "labels.csv").open()))
    assert len(rows) == 14 and {row["source"] for row in rows} == {"people"}
    assert len(json.loads((tmp_path / "labels.json").read_text())["labels"]) == 14
    assert sum(1 for path in (tmp_path / "tree").rglob("*.png")) == 14


def test_a_stale_version_is_a_one_line_error(capsys, image_folder):
    init(capsys, image_folder)
    run(capsys, "round", "shapes")
    with Store() as store:
        label_queue(store, "shapes")
    assert run(capsys, "retrain", "shapes")[0] == 0
    assert run(capsys, "retrain", "shapes", "--policy", "scratch")[0] == 0
    line = one_line_error(capsys, "round", "shapes", "--version", "1")
    assert line == (
        "error: model version 1 of 'shapes' is stale: the newest is v2; "
        "start the round with --version 2 (or without --version)"
    )
    line = one_line_error(capsys, "retrain", "shapes")
    assert "v2 already learnt from every label" in line


def test_errors_are_one_line_with_exit_code_2(capsys, image_folder, tmp_path):
    assert one_line_error(capsys, "round", "nope") == (
        "error: no labelling project named 'nope' (projects: none yet)"
    )
    assert "bogus" in one_line_error(
        capsys, "init", "x", "--images", str(image_folder), "--classes", "a,b", "--set=bogus=1"
    )
    assert "does not exist" in one_line_error(
        capsys, "init", "x", "--images", str(tmp_path / "nowhere"), "--classes", "a,b"
    )
    assert init(capsys, image_folder)[0] == 0
    assert "exists with the classes" in one_line_error(
        capsys, "init", "shapes", "--images", str(image_folder), "--classes", "cat,dog"
    )
    assert "needs at least 10 labels" in one_line_error(capsys, "retrain", "shapes")
    assert run(capsys, "round", "shapes")[0] == 0
    assert "14 seed items still wait for people" in one_line_error(capsys, "round", "shapes")
    assert "no labelling project named 'nope' (projects: shapes)" in one_line_error(capsys, "status", "nope")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    assert "is not empty" in one_line_error(
        capsys, "export", "shapes", "--format", "folder", "--out", str(busy)
    )
    assert "is a folder; give a file name" in one_line_error(
        capsys, "export", "shapes", "--format", "csv", "--out", str(busy)
    )
    assert "x.txt is a file, not a folder" in one_line_error(
        capsys, "export", "shapes", "--format", "folder", "--out", str(busy / "x.txt")
    )
    assert "x.txt is a file, not a folder" in one_line_error(
        capsys, "export", "shapes", "--format", "json", "--out", str(busy / "x.txt" / "labels.json")
    )
    with pytest.raises(SystemExit) as exited:  # argparse: a missing required option
        main(["label", "init", "shapes", "--classes", "a,b"])
    assert exited.value.code == 2


def test_status_without_projects_says_how_to_start(capsys):
    code, out, _ = run(capsys, "status")
    assert code == 0 and out.startswith("no labelling projects yet: playground label init NAME")
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out) == []


def test_status_json_writes_null_where_a_figure_is_not_a_number():
    from playground.label.cli import strict_json

    summary = {"agreement": float("nan"), "rounds": [{"bound": float("inf"), "pool": 3}], "name": "x"}
    assert json.loads(json.dumps(strict_json(summary), allow_nan=False)) == {
        "agreement": None,
        "rounds": [{"bound": None, "pool": 3}],
        "name": "x",
    }
