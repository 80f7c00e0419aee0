"""Tests for the deterministic synthetic shapes generator."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from playground.data import shapes as S
from playground.errors import ConfigError


@pytest.fixture(scope="module")
def dataset():
    return S.make_shapes(240, seed=3)


def _pixels(data: S.ShapesDataset) -> tuple[np.ndarray, np.ndarray]:
    """Images as (N, H, W, 3) and masks as numpy: many small torch ops crawl on busy CPUs."""
    return data.images.permute(0, 2, 3, 1).numpy(), data.masks.numpy()


def test_tensors_have_the_documented_types_and_ranges(dataset):
    assert dataset.images.dtype == torch.float32 and dataset.images.shape == (240, 3, 32, 32)
    assert 0.0 <= dataset.images.min() and dataset.images.max() <= 1.0
    assert dataset.masks.dtype == torch.bool and dataset.masks.shape == (240, 32, 32)
    assert dataset.labels.dtype == torch.int64 and dataset.labels.shape == (240,)
    assert len(dataset) == len(dataset.attributes) == len(dataset.captions) == 240
    image, label = dataset[5]
    assert torch.equal(image, dataset.images[5]) and label == dataset.labels[5]


def test_same_seed_is_bit_identical_and_other_seeds_differ():
    a, b = S.make_shapes(50, seed=7), S.make_shapes(50, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert a.attributes == b.attributes and torch.equal(a.labels, b.labels)
    c = S.make_shapes(50, seed=8)
    assert not torch.equal(a.images, c.images) and a.attributes != c.attributes


def test_two_thousand_images_render_in_one_vectorised_call():
    """Their speed (2,000 in under 2 s) is measured by ``scripts/bench_shapes.py``, not asserted here."""
    data = S.make_shapes(2000, seed=0)
    assert data.images.shape == (2000, 3, 32, 32) and data.masks.shape == (2000, 32, 32)
    assert data.masks.flatten(1).any(1).all()  # every image has its shape drawn


@pytest.mark.parametrize("label_by", S.LABEL_BY)
def test_labels_are_balanced_and_match_attributes(label_by):
    data = S.make_shapes(100, seed=1, label_by=label_by)
    counts = torch.bincount(data.labels, minlength=len(data.classes))
    assert counts.max() - counts.min() <= 1
    assert not torch.equal(data.labels, torch.arange(100) % len(data.classes))  # shuffled
    names = [getattr(a, label_by) for a in data.attributes]
    assert [data.classes[i] for i in data.labels] == names


def test_mask_pixels_carry_the_colour_and_the_background_is_grey(dataset):
    images, masks = _pixels(dataset)
    for image, mask, attrs in zip(images, masks, dataset.attributes):
        assert mask.sum() > 0
        rgb = np.array(S.COLOURS[attrs.colour]) / 255.0
        assert np.abs(image[mask].mean(axis=0) - rgb).max() < 0.03
        outside = image[~mask]
        assert np.ptp(outside, axis=1).mean() < 0.08  # grey: channels nearly equal
        assert (np.abs(outside - rgb).max(axis=1) > 0.2).mean() > 0.95


def test_masks_sit_at_the_centre_inside_the_image_and_grow_with_size(dataset):
    _, masks = _pixels(dataset)
    assert not masks[:, [0, -1], :].any() and not masks[:, :, [0, -1]].any()
    for mask, attrs in zip(masks, dataset.attributes):
        rows, cols = np.nonzero(mask)
        centre = (np.array([cols.mean(), rows.mean()]) + 0.5) / 32
        assert np.abs(centre - [attrs.x, attrs.y]).max() < 0.1
    sizes = np.array([a.size for a in dataset.attributes])
    area = {s: masks[sizes == s].sum(axis=(1, 2)).mean() for s in S.SIZES}
    assert area["small"] < area["medium"] < area["large"]


def test_captions_name_size_colour_shape_and_texture(dataset):
    for text, a in zip(dataset.captions, dataset.attributes):
        assert text == f"a {a.size} {a.colour} {a.shape} on a {a.texture} background"
    attrs = S.ShapeAttributes("triangle", "red", "small", "striped", 0.2, 0.8, 0.0)
    assert S.caption(attrs) == "a small red triangle on a striped background"
    assert S.position_word(attrs) == "bottom left"


def test_render_draws_a_mask_shaped_like_its_shape():
    rng = np.random.default_rng(0)
    make = lambda shape: S.ShapeAttributes(shape, "blue", "large", "plain", 0.5, 0.5, 0.0)
    image, circle = S.render(make("circle"), 64, rng)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3) and circle.dtype == bool
    _, triangle = S.render(make("triangle"), 64, rng)
    _, cross = S.render(make("cross"), 64, rng)
    assert triangle.sum() < cross.sum() < circle.sum()
    assert triangle[20].sum() < triangle[40].sum()  # a triangle widens towards its base
    assert cross[32, 32] and not cross[12, 12]  # a plus sign has empty corners


def test_unseen_shapes_use_only_ood_shapes_with_known_colours():
    data = S.make_shapes(60, seed=2, variant="unseen_shapes")
    assert data.classes == list(S.OOD_SHAPES)
    assert {a.shape for a in data.attributes} == set(S.OOD_SHAPES)
    assert {a.colour for a in data.attributes} <= set(S.COLOURS)
    assert all(m.any() for m in data.masks)


def test_unseen_colours_use_only_ood_colours_with_known_shapes():
    data = S.make_shapes(60, seed=2, variant="unseen_colours", label_by="colour")
    assert data.classes == list(S.OOD_COLOURS)
    assert {a.colour for a in data.attributes} == set(S.OOD_COLOURS)
    assert {a.shape for a in data.attributes} <= set(S.SHAPES)
    images, masks = _pixels(data)
    for image, mask, attrs in zip(images, masks, data.attributes):
        rgb = np.array(S.OOD_COLOURS[attrs.colour]) / 255.0
        assert np.abs(image[mask].mean(axis=0) - rgb).max() < 0.03


def test_ood_vocabulary_is_disjoint_and_visibly_different():
    assert not set(S.OOD_SHAPES) & set(S.SHAPES)
    assert not set(S.OOD_COLOURS) & set(S.COLOURS)
    for ood in S.OOD_COLOURS.values():
        for known in S.COLOURS.values():
            assert np.abs(np.subtract(ood, known)).max() >= 60


def test_noise_variant_has_empty_masks_and_noise_attributes():
    data = S.make_shapes(10, seed=0, variant="noise")
    assert not data.masks.any()
    assert data.captions == ["pure noise"] * 10 and data.classes == ["noise"]
    assert all(a.shape == "noise" and a.colour == "noise" for a in data.attributes)
    assert data.images.std() > 0.25  # uniform noise has std ~0.29


def test_knowledge_facts_cover_the_vocabulary():
    knowledge = S.knowledge_facts()
    assert ("triangle", "has_corners", "3") in knowledge
    assert ("circle", "is_a", "round_shape") in knowledge
    assert ("red", "is_a", "warm_colour") in knowledge
    assert all(len(t) == 3 and all(isinstance(x, str) for x in t) for t in knowledge)
    for shape in S.SHAPES + S.OOD_SHAPES:
        assert any(s == shape and r == "has_corners" for s, r, _ in knowledge)
    for colour in [*S.COLOURS, *S.OOD_COLOURS]:
        assert any(s == colour and r == "is_a" for s, r, _ in knowledge)


def test_image_facts_describe_the_image_and_its_shape():
    attrs = S.ShapeAttributes("triangle", "blue", "large", "dotted", 0.5, 0.5, 0.0)
    triples = S.facts(attrs)
    for triple in [
        ("image", "shows", "triangle"),
        ("image", "has_colour", "blue"),
        ("image", "has_size", "large"),
        ("image", "on_background", "dotted"),
        ("triangle", "has_corners", "3"),
    ]:
        assert triple in triples
    assert not any(s == "circle" for s, _, _ in triples)


def test_vocabulary_can_be_restricted():
    data = S.make_shapes(40, seed=0, shapes=("circle", "square"), colours=["red"])
    assert data.classes == ["circle", "square"]
    assert {a.shape for a in data.attributes} == {"circle", "square"}
    assert {a.colour for a in data.attributes} == {"red"}


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"shapes": ["circle", "blob"]}, "hexagon"),
        ({"colours": ["mauve"]}, "purple"),
        ({"variant": "unseen_shapes", "shapes": ["circle"]}, "crescent"),
        ({"variant": "weird"}, "unseen_colours"),
        ({"label_by": "mood"}, "texture"),
        ({"n": 0}, "positive"),
        ({"image_size": 8}, "16"),
        ({"variant": "noise", "shapes": ["circle"]}, "noise"),
    ],
)
def test_bad_arguments_raise_a_one_line_config_error(kwargs, named):
    kwargs = {"n": 4, **kwargs}
    with pytest.raises(ConfigError) as info:
        S.make_shapes(**kwargs)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_colour_is_linearly_learnable():
    train = S.make_shapes(2000, seed=0, image_size=16, label_by="colour")
    test = S.make_shapes(600, seed=1, image_size=16, label_by="colour")
    with threadpool_limits(1):  # many BLAS threads on 2 busy cores are ~50x slower
        model = LogisticRegression(max_iter=500).fit(train.images.flatten(1), train.labels)
    assert model.score(test.images.flatten(1), test.labels) > 0.9


def _small_cnn(classes: int) -> torch.nn.Module:
    def block(inputs, outputs):
        return [
            torch.nn.Conv2d(inputs, outputs, 3, padding=1),
            torch.nn.BatchNorm2d(outputs),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        ]

    return torch.nn.Sequential(
        *block(3, 16),
        *block(16, 32),
        *block(32, 32),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, classes),
    )


def test_shape_is_learnable_by_a_small_cnn():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        train, test = S.make_shapes(2000, seed=0), S.make_shapes(600, seed=1)
        net = _small_cnn(len(train.classes))
        optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(5):
            for batch in torch.randperm(len(train)).split(64):
                logits = net(train.images[batch])
                loss = torch.nn.functional.cross_entropy(logits, train.labels[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        net.eval()
        with torch.no_grad():
            accuracy = (net(test.images).argmax(1) == test.labels).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy > 0.5  # chance is 1/6
