"""Tests for labelling projects: init from a folder (bad files listed, re-init adds only new files),
settings, the held-out split by hash, the pool's images, and the labels people gave (undo, OOD, a
labelled folder, split votes waiting for a reviewer)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from playground.errors import ConfigError, DataFormatError, StoreError
from playground.label.project import (
    ProjectSettings,
    init_project,
    is_held_out,
    open_project,
    people_labels,
    pool_images,
    pool_meta,
    pool_size,
    project_names,
)
from playground.label.rounds import run_round
from playground.store import QueueItem
from tests.label.conftest import BAD_FILES, CLASSES, draw, label_queue, tiny, true_label, write_images


def by_path(store, project) -> dict[str, int]:
    return {meta["path"]: sid for sid, meta in pool_meta(store, project).items()}


def test_init_adds_the_images_and_lists_each_bad_file_with_its_reason(store, image_folder, tmp_path):
    store_folder = tmp_path
    report = init_project(store, "shapes", image_folder, CLASSES, tiny())
    assert report.added == 90 and report.labelled == 0
    reasons = {skipped.path: skipped.reason for skipped in report.skipped}
    assert set(reasons) == set(BAD_FILES)
    for path, reason in BAD_FILES.items():
        assert reasons[path].startswith(reason)
    project = open_project(store, "shapes")
    assert project_names(store) == ["shapes"]
    assert project.class_names == CLASSES and project.settings == tiny()
    assert project.images_dir == str(image_folder.resolve())
    assert project.folder == store_folder / "label" / "shapes"  # model versions beside the database
    assert pool_size(store, project) == 90
    meta = pool_meta(store, project)
    assert {m["source"] for m in meta.values()} == {"pool"}
    assert all(m["width"] == m["height"] == 16 and len(m["sha256"]) == 64 for m in meta.values())
    assert store.progress("shapes")["total"] == 0  # nothing is queued before a round


def test_a_second_init_adds_only_the_new_files(store, image_folder):
    init_project(store, "shapes", image_folder, CLASSES, tiny())
    write_images(image_folder, per_class=2, start=500)
    shutil.copy(image_folder / "red_000.png", image_folder / "zz_copy_of_red.png")
    again = init_project(store, "shapes", image_folder, CLASSES)
    assert again.added == 6
    reasons = {skipped.path: skipped.reason for skipped in again.skipped}
    assert reasons["zz_copy_of_red.png"] == "duplicate of red_000.png"
    assert set(reasons) == set(BAD_FILES) | {"zz_copy_of_red.png"}
    assert pool_size(store, again.project) == 96
    assert again.project.settings == tiny()  # the stored settings, not the defaults passed again
    assert init_project(store, "shapes", image_folder, CLASSES).added == 0


def test_init_on_an_existing_project_applies_the_settings_given(store, image_folder):
    init_project(store, "shapes", image_folder, CLASSES, tiny())
    changed = init_project(store, "shapes", image_folder, CLASSES, changes={"budget": 7, "redundancy": 2})
    assert (changed.project.settings.budget, changed.project.settings.redundancy) == (7, 2)
    assert open_project(store, "shapes").settings.budget == 7  # stored
    assert store.redundancy("shapes") == 2  # items queued from now on go to 2 people
    assert changed.project.settings.image_size == tiny().image_size  # the rest kept
    with pytest.raises(ConfigError, match="image_size=.*cannot change"):
        init_project(store, "shapes", image_folder, CLASSES, changes={"image_size": 64})
    with pytest.raises(ConfigError, match="unknown project setting"):
        init_project(store, "shapes", image_folder, CLASSES, changes={"budgets": 7})
    assert open_project(store, "shapes").settings.budget == 7


def test_other_classes_for_an_existing_project_are_refused(store, image_folder):
    init_project(store, "shapes", image_folder, CLASSES, tiny())
    with pytest.raises(DataFormatError, match="exists with the classes"):
        init_project(store, "shapes", image_folder, ["red", "green"], tiny())
    assert pool_size(store, open_project(store, "shapes")) == 90


def test_a_missing_folder_or_project_is_one_clear_error(store, tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        init_project(store, "shapes", tmp_path / "nowhere", CLASSES, tiny())
    with pytest.raises(StoreError, match="no labelling project named 'other'"):
        open_project(store, "other")


def test_a_labelled_folder_counts_as_labels_people_gave(store, image_folder, tmp_path):
    labelled = tmp_path / "labelled"
    for label, name in enumerate(CLASSES):
        (labelled / name).mkdir(parents=True)
        for index in range(200, 204):
            Image.fromarray(draw(label, index)).save(labelled / name / f"{name}_{index}.png")
    report = init_project(store, "shapes", image_folder, CLASSES, tiny(), labelled=labelled)
    assert report.labelled == 12 and report.added == 90
    people = people_labels(store, report.project)
    meta = pool_meta(store, report.project)
    assert len(people.sample_ids) == 12
    assert all(meta[sid]["source"] == "labelled" for sid in people.sample_ids)
    assert people.labels == [true_label(meta[sid]["path"]) for sid in people.sample_ids]
    assert sorted(people.labels) == [0] * 4 + [1] * 4 + [2] * 4
    assert not any(people.held_out)  # a labelled folder's images are for training
    assert people.undecided == [] and people.annotations is None


def test_a_labelled_folder_with_an_unknown_class_is_refused(store, image_folder, tmp_path):
    (tmp_path / "labelled" / "purple").mkdir(parents=True)
    Image.fromarray(draw(0, 300)).save(tmp_path / "labelled" / "purple" / "red_300.png")
    with pytest.raises(DataFormatError, match="purple"):
        init_project(store, "shapes", image_folder, CLASSES, tiny(), labelled=tmp_path / "labelled")


def test_unknown_or_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown project setting.*bogus"):
        ProjectSettings.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match="unknown train setting.*nope"):
        ProjectSettings.from_dict({"train": {"nope": 1}})
    for bad in ({"method": "magic"}, {"budget": 0}, {"alpha": 1.5}, {"held_out": 1.0}, {"channels": 2}):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))}="):
            ProjectSettings(**bad)
    settings = ProjectSettings.from_dict({"budget": 7, "train": {"width": 4}})
    assert settings.budget == 7 and settings.train.width == 4 and settings.train.min_steps == 150


def test_the_held_out_side_is_decided_by_the_hash(store, image_folder):
    assert is_held_out("0" * 64, 0.2) and not is_held_out("f" * 64, 0.99)
    assert is_held_out("40000000" + "0" * 56, 0.3) and not is_held_out("40000000" + "0" * 56, 0.25)
    first = init_project(store, "shapes", image_folder, CLASSES, tiny()).project
    second = init_project(store, "again", image_folder, CLASSES, tiny()).project
    meta = pool_meta(store, first)
    held = {m["path"] for m in meta.values() if m["held_out"]}
    assert all(m["held_out"] == is_held_out(m["sha256"], 0.2) for m in meta.values())
    assert held == {m["path"] for m in pool_meta(store, second).values() if m["held_out"]}
    assert 8 <= len(held) <= 30  # about 20% of 90


def test_pool_images_are_the_pixels_of_the_files_in_order(store, project):
    ids = sorted(by_path(store, project).items())  # (path, sample id), sorted by path
    wanted = [sid for _, sid in ids[:5]]
    chunks = list(pool_images(store, wanted, chunk=2))
    assert [len(chunk_ids) for chunk_ids, _ in chunks] == [2, 2, 1]
    images = torch.cat([images for _, images in chunks])
    assert images.shape == (5, 3, 16, 16) and images.dtype == torch.float32
    for (path, _), image in zip(ids[:5], images):
        name, index = path.removesuffix(".png").split("_")
        expected = draw(CLASSES.index(name), int(index)).astype(np.float32) / 255
        assert torch.allclose(image.permute(1, 2, 0), torch.from_numpy(expected), atol=2 / 255)


def test_undone_and_ood_decisions_are_not_labels(store, project):
    ids = by_path(store, project)
    names = ["red_000.png", "green_000.png", "blue_000.png"]
    items = [QueueItem(name, None, [1 / 3] * 3, 0.5, class_names=CLASSES) for name in names]
    store.enqueue("shapes", items)
    first = store.lease_next("shapes", "ann")
    store.submit("r1", first.escalation_id, "ann", "correct", 2)
    second = store.lease_next("shapes", "ann")
    store.submit("r2", second.escalation_id, "ann", "ood")
    third = store.lease_next("shapes", "ann")
    store.submit("r3", third.escalation_id, "ann", "correct", 1)
    assert people_labels(store, project).sample_ids == sorted(
        [ids[first.external_id], ids[third.external_id]]
    )
    store.undo_last("shapes", "ann")
    people = people_labels(store, project)
    assert people.sample_ids == [ids[first.external_id]] and people.labels == [2]


@pytest.mark.parametrize("consensus", ["dawid_skene", "majority"])
def test_a_split_vote_waits_for_its_reviewer_and_the_reviewer_wins(store, image_folder, consensus):
    project = init_project(
        store, "shapes", image_folder, CLASSES, tiny(redundancy=2, consensus=consensus)
    ).project
    run_round(store, "shapes")
    queued = label_queue(store, "shapes", "ann")
    split = queued[0]
    wrong = (true_label(split) + 1) % 3
    label_queue(store, "shapes", "bob", lambda path: wrong if path == split else true_label(path))
    sid = by_path(store, project)[split]
    people = people_labels(store, project)
    assert people.undecided == [sid] and sid not in people.sample_ids
    assert len(people.sample_ids) == len(queued) - 1
    review = store.lease_next("shapes", "carol")
    assert review.reason == "review" and review.external_id == split
    store.submit("review", review.escalation_id, "carol", "correct", wrong)  # the minority answer
    people = people_labels(store, project)
    assert people.undecided == [] and people.labels[people.sample_ids.index(sid)] == wrong
    assert people.annotations.num_annotators == 2  # the reviewer settles; they are not a third vote
