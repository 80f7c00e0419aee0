"""Tests for a project's summary and label export: spreadsheet-safe CSV, JSON that round-trips, an
ImageFolder tree of the original files, auto-labels marked as such, annotators and agreement."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
from PIL import Image

from playground.errors import DataFormatError
from playground.label.project import init_project, pool_meta
from playground.label.retrain import retrain
from playground.label.rounds import run_round
from playground.label.summary import EXPORT_FIELDS, export_labels, final_labels, project_summary
from tests.label.conftest import CLASSES, draw, label_queue, tiny, true_label, write_images

ODD_NAMES = {"=cmd.png": 0, "@at.png": 1, "sub/blue_950.png": 2}  # formula-like cells; a sub-folder


def truth(path: str) -> int:
    return ODD_NAMES.get(path, true_label(path) if "_" in path else -1)


@pytest.fixture
def small(store, tmp_path):
    """A project of 15 images (two with formula-like names) that people labelled in full."""
    folder = tmp_path / "small"
    write_images(folder, per_class=4)
    (folder / "sub").mkdir()
    for index, (path, label) in enumerate(ODD_NAMES.items()):
        Image.fromarray(draw(label, 900 + index)).save(folder / path)
    project = init_project(store, "small", folder, CLASSES, tiny(held_out=0.0, seed_size=50)).project
    run_round(store, "small")
    assert len(label_queue(store, "small", label_of=truth)) == 15
    return project


def test_csv_cells_are_spreadsheet_safe(store, small, tmp_path):
    out = export_labels(store, small, tmp_path / "labels.csv", "csv")
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(EXPORT_FIELDS) and len(rows) == 15
    by_path = {row["path"]: row for row in rows}
    assert by_path["'=cmd.png"]["class_name"] == "red" and by_path["'=cmd.png"]["label"] == "0"
    assert by_path["'@at.png"]["class_name"] == "green" and by_path["sub/blue_950.png"]["label"] == "2"
    assert not any(row["path"].startswith(("=", "@", "+", "-")) for row in rows)
    assert {row["source"] for row in rows} == {"people"} and {row["held_out"] for row in rows} == {"False"}
    assert all(int(row["label"]) == truth(row["path"].lstrip("'")) for row in rows)


def test_json_export_round_trips(store, small, tmp_path):
    out = export_labels(store, small, tmp_path / "labels.json", "json")
    loaded = json.loads(out.read_text())
    assert loaded == {"project": "small", "classes": CLASSES, "labels": final_labels(store, small)}
    assert {row["path"] for row in loaded["labels"]} >= set(ODD_NAMES)  # raw names in JSON


def test_folder_export_copies_the_originals_into_class_folders(store, small, tmp_path):
    out = export_labels(store, small, tmp_path / "tree", "folder")
    files = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert len(files) == 15 and "blue/sub__blue_950.png" in files and "red/=cmd.png" in files
    for relative in files:
        class_name, name = relative.split("/")
        original = small.images_dir + "/" + name.replace("__", "/")
        assert CLASSES.index(class_name) == truth(name.replace("__", "/"))
        assert (out / relative).read_bytes() == open(original, "rb").read()


def test_folder_export_refuses_a_non_empty_target_and_unknown_formats(store, small, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(DataFormatError, match="is not empty"):
        export_labels(store, small, target, "folder")
    assert [path.name for path in target.iterdir()] == ["keep.txt"]
    with pytest.raises(DataFormatError, match="unknown export format 'xml'"):
        export_labels(store, small, tmp_path / "labels.xml", "xml")
    assert not (tmp_path / "labels.xml").exists()


def test_a_labelled_folder_is_exported_as_such_but_not_copied(store, tmp_path, image_folder):
    labelled = tmp_path / "labelled" / "blue"
    labelled.mkdir(parents=True)
    Image.fromarray(draw(2, 700)).save(labelled / "blue_700.png")
    project = init_project(store, "p", image_folder, CLASSES, tiny(), labelled=labelled.parent).project
    rows = final_labels(store, project)
    assert [(row["path"], row["class_name"], row["source"]) for row in rows] == [
        ("blue/blue_700.png", "blue", "labelled folder")
    ]
    out = export_labels(store, project, tmp_path / "tree", "folder")
    assert not out.exists() or not any(out.rglob("*.png"))


def test_auto_labels_are_exported_with_source_auto(store, image_folder, tmp_path):
    settings = tiny(held_out=0.5, alpha=0.4, budget=30, seed_size=20, min_calibration=10)
    project = init_project(store, "shapes", image_folder, CLASSES, settings).project
    run_round(store, "shapes")
    people = label_queue(store, "shapes")
    retrain(store, "shapes")
    report = run_round(store, "shapes")
    assert report.counts["auto"] >= 5
    rows = final_labels(store, project)
    auto = [row for row in rows if row["source"] == "auto"]
    assert len(auto) == report.counts["auto"] and len(rows) == len(people) + len(auto)
    assert {row["path"] for row in rows if row["source"] == "people"} == set(people)
    assert sum(row["label"] != true_label(row["path"]) for row in auto) <= 0.15 * len(auto)
    assert all(row["class_name"] == CLASSES[row["label"]] for row in rows)
    exported = export_labels(store, project, tmp_path / "labels.csv", "csv").read_text()
    assert exported.count(",auto,") == len(auto)
    label_queue(store, "shapes", limit=3)  # people label more: auto-labels of the last round stay
    assert sum(row["source"] == "auto" for row in final_labels(store, project)) == len(auto)


def test_the_summary_counts_people_rounds_versions_annotators_and_agreement(store, small):
    summary = project_summary(store, small)
    assert (summary["project"], summary["classes"], summary["pool"]) == ("small", CLASSES, 15)
    assert (summary["labelled"], summary["awaiting_review"]) == (15, 0)
    assert summary["queue"]["done"] == 15 and summary["queue"]["open"] == 0
    assert [entry["number"] for entry in summary["rounds"]] == [1]
    assert summary["rounds"][0]["counts"]["seed"] == 15 and summary["versions"] == []
    [annotator] = summary["annotators"]
    assert (annotator["annotator"], annotator["decisions"]) == ("ann", 15)
    assert annotator["estimated_accuracy"] is None  # Dawid-Skene needs two or more annotators
    assert math.isnan(summary["agreement"]["alpha"])  # nobody labelled an item twice
    retrain(store, "small")
    versions = project_summary(store, small)["versions"]
    assert [(v["version"], v["labels"], v["accuracy"]) for v in versions] == [(1, 15, None)]


def test_the_summary_of_redundant_labels(store, tmp_path):
    folder = tmp_path / "small"
    write_images(folder, per_class=4)
    project = init_project(
        store, "small", folder, CLASSES, tiny(held_out=0.0, seed_size=50, redundancy=3)
    ).project
    run_round(store, "small")
    names = sorted(meta["path"] for meta in pool_meta(store, project).values())
    split, slip = names[0], names[1]
    label_queue(store, "small", "ann")
    label_queue(
        store, "small", "bob", lambda p: (true_label(p) + 1) % 3 if p in (split, slip) else true_label(p)
    )
    label_queue(store, "small", "cy", lambda p: (true_label(p) + 2) % 3 if p == split else true_label(p))
    summary = project_summary(store, project)
    assert (summary["labelled"], summary["awaiting_review"]) == (11, 1)  # three answers for `split`
    by_name = {row["annotator"]: row for row in summary["annotators"]}
    assert {name: row["decisions"] for name, row in by_name.items()} == {"ann": 12, "bob": 12, "cy": 12}
    assert by_name["bob"]["estimated_accuracy"] < by_name["ann"]["estimated_accuracy"] <= 1.0
    assert 0.5 < summary["agreement"]["alpha"] < 1.0
    assert summary["agreement"]["pairable_items"] == 12
    shutil.rmtree(folder)  # the summary reads the store only
    assert project_summary(store, project)["pool"] == 12
