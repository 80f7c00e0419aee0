"""Tests for retraining a labelling project: a scratch first version, finetune_replay on new labels plus
replayed old ones (refused when nothing is new), too few labels, people's corrections reaching the
model, and split votes left out until a reviewer decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import playground.label.retrain as retrain_module
from playground.active.learner import TrainSpec, scratch_steps
from playground.errors import DataFormatError
from playground.label.project import init_project, people_labels, pool_images, pool_meta
from playground.label.retrain import retrain
from playground.label.rounds import run_round
from playground.label.versions import latest, load_models, predict, versions
from tests.label.conftest import CLASSES, draw, label_queue, tiny, true_label


@pytest.fixture
def calls(monkeypatch):
    """Every ``train_on`` call of retrain as ``(images, labels, steps)``; the training still runs."""
    seen = []
    real = retrain_module.train_on

    def recording(model, images, labels, spec, steps, seed):
        seen.append((images, labels, steps))
        return real(model, images, labels, spec, steps, seed)

    monkeypatch.setattr(retrain_module, "train_on", recording)
    return seen


def trained_on(version) -> list[int]:
    return json.loads((Path(version.path) / "trained_on.json").read_text())


def states_equal(first, second) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_the_first_version_trains_from_scratch_and_is_measured_on_held_out_labels(store, project, calls):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    version = retrain(store, "shapes", policy="finetune_replay")  # nothing to fine-tune yet
    detail = version.detail
    assert (version.number, detail["policy"], detail["parent"]) == (1, "scratch", None)
    assert (detail["labels"], detail["new_labels"], detail["held_out"]) == (10, 10, 4)
    assert detail["steps"] == scratch_steps(project.settings.train, 10) == 40
    assert 0.0 <= detail["accuracy"] <= 1.0 and detail["accuracy"] * 4 == round(detail["accuracy"] * 4)
    train_ids, _ = people_labels(store, project).split(held_out=False)
    assert trained_on(version) == train_ids
    assert [(len(images), steps) for images, _, steps in calls] == [(10, 40)]
    assert Path(version.path) == project.folder / "v1"
    assert (Path(version.path) / "member0.safetensors").is_file()
    assert [v.number for v in versions(store, project)] == [1]


def test_finetune_replay_learns_the_new_labels_and_replays_old_ones(store, image_folder, calls):
    train = TrainSpec(width=8, min_steps=20, max_steps=40, finetune_steps=10, replay=5)
    project = init_project(store, "shapes", image_folder, CLASSES, tiny(train=train)).project
    run_round(store, "shapes")
    label_queue(store, "shapes")
    first = retrain(store, "shapes")
    run_round(store, "shapes")
    label_queue(store, "shapes")  # 16 uncertain (trained on) and 4 calibration (held out) picks
    second = retrain(store, "shapes")
    detail = second.detail
    assert (detail["policy"], detail["parent"], detail["steps"]) == ("finetune_replay", 1, 10)
    assert (detail["labels"], detail["new_labels"], detail["held_out"]) == (26, 16, 8)
    images, labels, steps = calls[-1]
    assert (len(images), steps) == (16 + 5, 10)  # the new labels and `replay` old ones
    people = people_labels(store, project)
    new_ids = [sid for sid in trained_on(second) if sid not in trained_on(first)]
    expected = [people.labels[people.sample_ids.index(sid)] for sid in new_ids]
    assert labels[:16].tolist() == expected
    with pytest.raises(DataFormatError, match="v2 already learnt from every label"):
        retrain(store, "shapes")
    third = retrain(store, "shapes", policy="scratch")
    assert (third.number, third.detail["policy"], third.detail["new_labels"]) == (3, "scratch", 0)
    assert (len(calls[-1][0]), calls[-1][2]) == (26, 40)


def test_finetune_starts_from_the_previous_weights_and_scratch_does_not(store, project, monkeypatch):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    first = retrain(store, "shapes")
    run_round(store, "shapes")
    label_queue(store, "shapes")
    monkeypatch.setattr(retrain_module, "train_on", lambda model, *args: model)  # no training at all
    finetuned = retrain(store, "shapes")
    fresh = retrain(store, "shapes", policy="scratch")
    [v1], [v2], [v3] = (load_models(project, version) for version in (first, finetuned, fresh))
    assert states_equal(v1, v2) and not states_equal(v1, v3)


def test_too_few_labels_or_one_class_is_refused(store, image_folder, tmp_path):
    labelled = tmp_path / "labelled" / "red"
    labelled.mkdir(parents=True)
    for index in range(12):
        Image.fromarray(draw(0, 400 + index)).save(labelled / f"red_{index}.png")
    init_project(store, "shapes", image_folder, CLASSES, tiny())
    with pytest.raises(DataFormatError, match="needs at least 10 labels.*given 0 so far"):
        retrain(store, "shapes")
    init_project(store, "shapes", image_folder, CLASSES, labelled=tmp_path / "labelled")
    with pytest.raises(DataFormatError, match="two or more classes.*given 12 so far"):
        retrain(store, "shapes")


def test_a_policy_is_checked_before_training(store, project):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    with pytest.raises(DataFormatError, match="unknown retraining policy 'magic'"):
        retrain(store, "shapes", policy="magic")
    assert latest(store, project) is None


def test_corrections_people_give_reach_the_model(store, image_folder):
    """People call every red image blue: the model learns to say blue for red images."""
    train = TrainSpec(width=8, min_steps=60, max_steps=60)
    project = init_project(store, "shapes", image_folder, CLASSES, tiny(seed_size=60, train=train)).project
    run_round(store, "shapes")
    label_queue(store, "shapes", label_of=lambda path: 2 if true_label(path) == 0 else true_label(path))
    version = retrain(store, "shapes")
    [model] = load_models(project, version)
    meta = pool_meta(store, project)
    ids = sorted(meta)
    images = torch.cat([batch for _, batch in pool_images(store, ids)])
    predicted = predict([model], images, 1, 0).mean(0).argmax(1)
    truth = torch.tensor([true_label(meta[sid]["path"]) for sid in ids])
    assert (predicted[truth == 0] == 2).float().mean() >= 0.9  # red images: "blue", as people said
    assert (predicted[truth == 1] == 1).float().mean() >= 0.9  # green ones: still green
    assert (predicted == 0).sum() == 0  # nobody said red, so the model never does


def test_a_split_vote_is_trained_on_only_after_the_reviewer_decides(store, image_folder, calls):
    project = init_project(store, "shapes", image_folder, CLASSES, tiny(redundancy=2, seed_size=12)).project
    run_round(store, "shapes")
    split = label_queue(store, "shapes", "ann")[0]
    wrong = (true_label(split) + 1) % 3
    label_queue(store, "shapes", "bob", lambda path: wrong if path == split else true_label(path))
    sid = {meta["path"]: sid for sid, meta in pool_meta(store, project).items()}[split]
    first = retrain(store, "shapes")
    assert sid not in trained_on(first) and first.detail["labels"] == 11
    review = store.lease_next("shapes", "carol")
    assert (review.reason, review.external_id) == ("review", split)
    store.submit("carol-review", review.escalation_id, "carol", "correct", wrong)
    second = retrain(store, "shapes")
    assert sid in trained_on(second) and second.detail["new_labels"] == 1
    _, labels, _ = calls[-1]
    assert labels[0] == wrong  # the reviewer's label (the minority answer) is the one learnt
