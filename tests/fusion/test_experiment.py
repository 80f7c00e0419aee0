"""The fusion experiment: a tiny run end to end, its saved pipeline, the recipe, bad configs, and the
fact that a fusion head learns to use a context that knows the answer."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from playground.core.config import build_config
from playground.core.runner import config_from_recipe
from playground.core.runs import Metrics, load_run
from playground.core.training import fit, make_optimizer
from playground.data import TensorLoader
from playground.data.shapes import make_shapes
from playground.errors import CheckpointError, ConfigError
from playground.fusion.experiment import Config, few_per_class, run
from playground.fusion.heads import FUSIONS
from playground.fusion.model import FusionNet
from playground.fusion.report import add_zero_shot_metrics
from playground.fusion.results import follow, labelled_images, open_run, run_config, zero_shot_scores
from playground.fusion.text_encoder import HashingTextEncoder
from playground.fusion.zeroshot_fashion import describe_from_wordnet, run_fashion_zero_shot
from tests.conftest import REPO, needs_fashion_mnist

RECIPE = REPO / "recipes" / "fusion_shapes.toml"
# about 15 s on one thread; the hashing text encoder keeps MiniLM's load time out of it
TINY = dict(
    caption_pool=200,
    train_size=120,
    test_size=60,
    lowlabel_per_class=3,
    k=4,
    steps=4,
    captioner_epochs=1,
    transe_epochs=10,
    zeroshot_train=200,
    zeroshot_test=150,
    zeroshot_epochs=1,
    latency_iters=2,
    width=4,
    text_encoder="hashing",
    index_backend="torch",
    fashion_zeroshot=False,
    compare_fusions=["film", "concat"],
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run(Config(**TINY, out=str(tmp_path_factory.mktemp("runs"))))


def test_tiny_run_writes_every_metric_the_issue_names(tiny_run):
    metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())["metrics"]
    for variant in ("image_only", "text", "kg", "retrieval", "all"):
        assert f"fusion/{variant}/latency_ms" in metrics and metrics[f"fusion/{variant}/latency_ms"] > 0
        for regime in ("full", "lowlabel", "degraded_lowlabel"):
            assert 0 <= metrics[f"fusion/{variant}/{regime}/accuracy"] <= 1
            assert 0 <= metrics[f"fusion/{variant}/{regime}/miou"] <= 1
    gain = metrics["fusion/text/lowlabel/accuracy"] - metrics["fusion/image_only/lowlabel/accuracy"]
    assert metrics["fusion/text/lowlabel/accuracy_gain"] == pytest.approx(gain)
    assert metrics["zeroshot/heldout/chance"] == pytest.approx(1 / 8)
    assert {"zeroshot/heldout/accuracy", "zeroshot/gzsl/harmonic_mean"} <= set(metrics)
    report = (tiny_run.run_dir / "report.md").read_text()
    assert "| image_only |" in report and "harmonic mean" in report
    for chart in ("ablation", "gains"):
        assert (tiny_run.run_dir / f"{chart}.png").is_file() and f"]({chart}.png)" in report
    # compare_fusions: the `all` variant again under the concat head (film is the main head, not repeated)
    assert 0 <= metrics["fusion_heads/concat/degraded_lowlabel/miou"] <= 1
    assert not any(name.startswith("fusion_heads/film") for name in metrics)
    assert "## Fusion heads (variant `all`)" in report and "| concat |" in report
    # the typed results kept in memory match what was written
    results = tiny_run.results
    assert set(results.latency) == {"image_only", "text", "kg", "retrieval", "all"}
    assert results.latency["all"] == pytest.approx(metrics["fusion/all/latency_ms"])
    assert (
        set(results.scores) == {"full", "lowlabel", "degraded_lowlabel"} and results.fashion_zero_shot == {}
    )
    assert (tiny_run.run_dir / "models" / "captioner.safetensors").is_file()


def test_metric_records_carry_the_split_and_the_variant_regime_task_and_head_tags(tiny_run):
    measured = load_run(tiny_run.run_dir).measured  # as written to metrics.json
    at = dict(variant="text", regime="lowlabel", task="classify", head="film")
    (accuracy,) = measured.select(split="test", **at, measure="accuracy")
    assert accuracy.name == "fusion/text/lowlabel/accuracy"
    (gain,) = measured.select(split="test", **at, reference="image_only", measure="accuracy_gain")
    assert gain.name == "fusion/text/lowlabel/accuracy_gain"
    heads = measured.select(split="test", variant="all", regime="full", task="segment", measure="miou")
    assert {(r.name, r.tags["head"]) for r in heads} == {
        ("fusion/all/full/miou", "film"),
        ("fusion_heads/concat/full/miou", "concat"),
    }
    (image_only,) = measured.select(variant="image_only", regime="full", task="classify", measure="accuracy")
    assert "head" not in image_only.tags  # nothing is fused
    (latency,) = measured.select(split="", variant="all", measure="latency_ms")
    assert latency.name == "fusion/all/latency_ms"
    (unseen,) = measured.select(split="test", dataset="shapes", setting="gzsl", classes="unseen")
    assert unseen.name == "zeroshot/gzsl/unseen_accuracy"
    (chance,) = measured.select(dataset="shapes", measure="chance")
    assert chance.split == "" and chance.name == "zeroshot/heldout/chance"
    slots = measured.select(split="test", images="degraded", slot=..., measure="accuracy")
    assert slots and all(r.name == f"captioner/degraded/{r.tags['slot']}_accuracy" for r in slots)


def test_fashion_zero_shot_records_are_tagged_with_their_embedding():
    metrics = Metrics()
    numbers = dict(
        heldout_accuracy=0.5, chance=0.25, seen_accuracy=0.9, unseen_accuracy=0.1, harmonic_mean=0.18
    )
    fashion = {kind: numbers for kind in ("text", "kg", "text+kg")}
    add_zero_shot_metrics(metrics, SimpleNamespace(metrics=numbers), {}, fashion)
    (kg,) = metrics.select(split="test", dataset="fashion_mnist", embedding="kg", setting="heldout")
    assert kg.name == "zeroshot_fashion/kg/heldout/accuracy" and kg.tags["measure"] == "accuracy"
    harmonic = metrics.select(split="test", dataset="fashion_mnist", measure="harmonic_mean")
    assert {r.tags["embedding"] for r in harmonic} == {"text", "kg", "text+kg"}
    (chance,) = metrics.select(split="", dataset="fashion_mnist", measure="chance")
    assert chance.name == "zeroshot_fashion/heldout/chance"


def test_the_saved_pipeline_follows_one_image(tiny_run):
    pipeline = open_run(tiny_run.run_dir)
    image = make_shapes(1, seed=5).images[0]
    followed = follow(pipeline, image, "lowlabel")
    assert followed.caption.startswith("a ") and followed.caption.endswith("background")
    assert set(followed.entities) <= set(pipeline.knowledge["lowlabel"].graph.entities) and followed.entities
    assert all(h in followed.entities or t in followed.entities for h, _, t in followed.neighbourhood)
    assert len(followed.neighbours) == 4 and sum(followed.neighbour_weights) == pytest.approx(1.0, abs=1e-5)
    assert labelled_images(pipeline.config, "lowlabel").shape[0] == 18
    assert (
        set(followed.probabilities)
        == set(followed.segmentation)
        == {"image_only", "text", "kg", "retrieval", "all"}
    )
    assert followed.segmentation["all"].shape == (32, 32)
    # the same image gives the run's own prediction: the saved models were reloaded, not re-initialised
    scores = zero_shot_scores(pipeline, image[None], ["a red circle", "a pink heart", "a blue square"])
    assert scores.shape == (1, 3) and scores.sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"index_labels": torch.zeros(3)}, "tensor 'index_labels' is float32 (3,), expected int (M)"),
        ({"entity_embeddings": torch.zeros(2, 8)}, "tensor 'entity_embeddings' is float32 (2, 8), expected"),
        ({"index_embeddings": None}, "lacks the tensor 'index_embeddings'"),
    ],
)
def test_hostile_knowledge_tensors_are_one_checkpoint_error(tiny_run, tmp_path, change, problem):
    from tests.hostile import replant

    copy = shutil.copytree(tiny_run.run_dir, tmp_path / "run")
    knowledge = copy / "models" / "knowledge_lowlabel.safetensors"
    replant(knowledge, change)
    with pytest.raises(CheckpointError) as info:
        open_run(copy)
    assert str(knowledge) in str(info.value) and problem in str(info.value)


def test_recipe_presets_load_and_bad_configs_are_clear():
    for preset in ("quick", "full"):
        _, config = config_from_recipe(RECIPE, preset)
        assert config.methods == ["image_only", "text", "kg", "retrieval", "all"]
    with pytest.raises(ConfigError, match="unknown key"):
        build_config(Config, {"fusoin": "film"})
    with pytest.raises(ConfigError, match="methods must include image_only"):
        Config(methods=["text"])
    with pytest.raises(ConfigError, match=r"methods: unknown 'txt'; valid: image_only, text, kg"):
        build_config(Config, {"methods": ["image_only", "txt"]})
    with pytest.raises(ConfigError, match="fusion"):
        Config(fusion="sum")
    with pytest.raises(ConfigError, match="lowlabel_per_class"):
        Config(k=8, lowlabel_per_class=1)


def test_methods_runs_a_subset_empty_means_all_and_the_old_key_still_works(tmp_path, capsys):
    _, config = config_from_recipe(RECIPE, "quick", ['methods=["retrieval", "image_only"]'])
    assert config.methods == ["image_only", "retrieval"]  # in the variants' own order
    assert Config(methods=[]).methods == Config().methods == ["image_only", "text", "kg", "retrieval", "all"]
    assert capsys.readouterr().err == ""
    _, config = config_from_recipe(RECIPE, "quick", ['variants=["image_only", "kg"]'])
    assert config.methods == ["image_only", "kg"] and "note: variants in --set" in capsys.readouterr().err
    recipe = tmp_path / "old_fusion.toml"
    recipe.write_text('experiment = "fusion"\n[config]\nvariants = ["image_only", "text"]\n')
    _, config = config_from_recipe(recipe, None)
    assert config.methods == ["image_only", "text"] and "variants in recipe" in capsys.readouterr().err
    subset = dict(
        TINY, methods=["image_only", "kg"], tasks=["classify"], regimes=["lowlabel"], compare_fusions=[]
    )
    result = run(Config(**subset, out=str(tmp_path)))
    variants = {r.tags["variant"] for r in result.metrics.select(split="test", regime="lowlabel")}
    assert variants == {"image_only", "kg"} and set(result.results.latency) == {"image_only", "kg"}


def test_an_old_run_config_with_variants_opens_quietly(tiny_run, tmp_path, capsys):
    old = tmp_path / "fusion-old"
    old.mkdir()
    text = (tiny_run.run_dir / "config.toml").read_text()
    (old / "config.toml").write_text(text.replace("\nmethods = ", "\nvariants = "))
    assert "variants = " in (old / "config.toml").read_text()
    assert run_config(old).methods == ["image_only", "text", "kg", "retrieval", "all"]
    assert capsys.readouterr().err == ""


def test_few_per_class_is_balanced():
    labels = torch.tensor([0, 1, 2] * 10)
    chosen = few_per_class(labels, 3, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [3, 3, 3]


@pytest.mark.slow
@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_fusion_head_learns_to_use_a_context_that_knows_the_shape(fusion):
    """With 4 labels per class, image-only is near chance after 80 steps; a context token that names the
    shape (the hashing encoder's embedding of the shape word) carries the answer, and with modality
    dropout every fusion head must learn to read it rather than memorise the 24 images."""
    train, test = make_shapes(24, seed=1), make_shapes(300, seed=2)
    encoder = HashingTextEncoder(32)
    ones = torch.ones(len(train), 1, dtype=torch.bool)

    def accuracy(sources, context_train, context_test):
        torch.manual_seed(0)
        model = FusionNet("classify", 6, sources, fusion, width=8, modality_dropout=0.5)
        loader = TensorLoader(train.images, *context_train, train.labels, batch_size=24, shuffle=True, seed=0)
        fit(model, loader, epochs=80, optimizer=make_optimizer(model, "adamw", 3e-3))
        with torch.no_grad():
            return (model.eval()(test.images, *context_test).argmax(1) == test.labels).float().mean().item()

    text_train = [encoder.encode([a.shape for a in train.attributes])[:, None], ones]
    text_test = [
        encoder.encode([a.shape for a in test.attributes])[:, None],
        torch.ones(len(test), 1, dtype=torch.bool),
    ]
    image_only = accuracy({}, [], [])
    fused = accuracy({"text": 32}, text_train, text_test)
    assert fused > 0.9 and fused > image_only + 0.3, (fused, image_only)


@needs_fashion_mnist()
def test_fashion_zero_shot_uses_wordnet_descriptions_and_graph_embeddings():
    config = SimpleNamespace(
        fashion_zeroshot_train=600,
        fashion_zeroshot_test=400,
        seed=0,
        transe_dim=8,
        transe_epochs=20,
        width=4,
        zeroshot_epochs=1,
        lr=3e-3,
        batch_size=64,
    )
    assert describe_from_wordnet("Sneaker").startswith("a sneaker, a kind of shoe, footwear")
    results = run_fashion_zero_shot(config, HashingTextEncoder(32).encode)
    assert set(results) == {"text", "kg", "text+kg"}
    for values in results.values():
        assert values["chance"] == 0.25 and 0 <= values["heldout_accuracy"] <= 1
