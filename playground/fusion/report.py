"""The fusion run's report: the ablation table and its charts (:mod:`playground.fusion.charts`), the latency
each addition costs, the captioner's quality, zero-shot figures."""

from __future__ import annotations

from playground.core.runs import Metrics

METRIC_OF = {"classify": "accuracy", "segment": "miou"}


# zeroshot/<name>: (its key in zero_shot_metrics, its tags); ``setting`` heldout = unseen classes only,
# gzsl = generalised (all classes), ``classes`` the GZSL part (seen or unseen)
ZERO_SHOT = {
    "heldout/accuracy": ("heldout_accuracy", dict(setting="heldout", measure="accuracy")),
    "heldout/chance": ("chance", dict(setting="heldout", measure="chance")),
    "gzsl/seen_accuracy": ("seen_accuracy", dict(setting="gzsl", classes="seen", measure="accuracy")),
    "gzsl/unseen_accuracy": ("unseen_accuracy", dict(setting="gzsl", classes="unseen", measure="accuracy")),
    "gzsl/harmonic_mean": ("harmonic_mean", dict(setting="gzsl", measure="harmonic_mean")),
}


def _add_zero_shot(metrics: Metrics, name: str, value: float, **tags) -> None:
    """A zero-shot number: on the test images, except chance (about no split)."""
    metrics.add(name, value, "fraction", "" if tags["measure"] == "chance" else "test", **tags)


def add_zero_shot_metrics(metrics: Metrics, zero_shot, caption_quality: dict, fashion: dict) -> None:
    """Zero-shot records tagged ``dataset`` and as :data:`ZERO_SHOT` (Fashion-MNIST's also ``embedding``);
    the captioner's slot accuracy on held-out images tagged ``images`` (clean, degraded) and ``slot``."""
    for name, (key, tags) in ZERO_SHOT.items():
        _add_zero_shot(metrics, f"zeroshot/{name}", zero_shot.metrics[key], dataset="shapes", **tags)
    for kind, values in fashion.items():
        on = dict(dataset="fashion_mnist", embedding=kind)
        for name in ("heldout/accuracy", "gzsl/harmonic_mean"):
            key, tags = ZERO_SHOT[name]
            _add_zero_shot(metrics, f"zeroshot_fashion/{kind}/{name}", values[key], **on, **tags)
        key, tags = ZERO_SHOT["heldout/chance"]  # one chance for every embedding
        _add_zero_shot(
            metrics, "zeroshot_fashion/heldout/chance", values[key], dataset="fashion_mnist", **tags
        )
    for images, slots in caption_quality.items():
        for slot, value in slots.items():
            tags = dict(images=images, slot=slot, measure="accuracy")
            metrics.add(f"captioner/{images}/{slot}_accuracy", value, "fraction", "test", **tags)


def ablation_table(config, all_scores: dict, latency: dict) -> list[str]:
    regimes = list(all_scores)
    header = [f"{task} {METRIC_OF[task]} ({regime})" for task in config.tasks for regime in regimes]
    lines = ["| variant | " + " | ".join(header) + " | latency ms |", "|---|" + "---|" * (len(header) + 1)]
    for variant in config.methods:
        cells = []
        for task in config.tasks:
            for regime in regimes:
                value = all_scores[regime][task, variant][METRIC_OF[task]]
                gain = value - all_scores[regime][task, "image_only"][METRIC_OF[task]]
                cells.append(f"{value:.3f}" + ("" if variant == "image_only" else f" ({gain:+.3f})"))
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {latency.get(variant, float('nan')):.2f} |")
    return lines


def heads_lines(config, all_scores: dict) -> list[str]:
    """The ``all`` variant under every compared fusion head (when ``compare_fusions`` asked for some)."""
    heads = [config.fusion] + [h for h in config.compare_fusions if h != config.fusion]
    if len(heads) == 1:
        return []
    regimes = list(all_scores)
    header = [f"{task} {METRIC_OF[task]} ({regime})" for task in config.tasks for regime in regimes]
    lines = [
        "## Fusion heads (variant `all`)",
        "",
        "| head | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for head in heads:
        key = "all" if head == config.fusion else f"all@{head}"
        cells = [f"{all_scores[r][task, key][METRIC_OF[task]]:.3f}" for task in config.tasks for r in regimes]
        lines.append(f"| {head} | " + " | ".join(cells) + " |")
    return lines + [""]


def fashion_lines(fashion: dict) -> list[str]:
    if not fashion:
        return []
    from playground.fusion.zeroshot_fashion import HELDOUT

    lines = [
        "## Zero-shot on Fashion-MNIST with WordNet (real knowledge)",
        "",
        f"Held out: {', '.join(HELDOUT)} (chance {next(iter(fashion.values()))['chance']:.2f}). Class "
        "embeddings: `text` = the sentence encoder on the WordNet hypernyms and gloss, `kg` = TransE on the "
        "WordNet hypernym graph, `text+kg` = both.",
        "",
        "| class embedding | held-out accuracy | GZSL seen | GZSL unseen | GZSL H |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {kind} | {m['heldout_accuracy']:.3f} | {m['seen_accuracy']:.3f} | {m['unseen_accuracy']:.3f} | "
        f"{m['harmonic_mean']:.3f} |"
        for kind, m in fashion.items()
    ]
    return lines + [""]


def report(
    config,
    all_scores: dict,
    latency: dict,
    zero_shot,
    caption_quality: dict,
    knowledge,
    fashion: dict | None = None,
) -> str:
    m = zero_shot.metrics
    lines = [
        f"# Knowledge fusion on the synthetic shapes (seed {config.seed})",
        "",
        f"Fusion head: **{config.fusion}**; {config.steps} optimizer steps per model; "
        f"full regime {config.train_size} labelled images, low-label {config.lowlabel_per_class} per class; "
        f"degraded: blur σ {config.blur} px + an occluding square of {config.occlusion:.0%} of the side; "
        f"{config.test_size} test images. Text encoder: {knowledge_encoder_name(config)}.",
        "",
        "## Ablation (in brackets: the change against image-only)",
        "",
        *ablation_table(config, all_scores, latency),
        "",
        "![every variant in every regime](ablation.png)",
        "",
        "![gain over image-only](gains.png)",
        "",
        "Latency: p50 per image of the whole pipeline on one thread pool (caption, text encoder uncached, "
        "entity lookup, retrieval, network).",
        "",
        "## What the context knows",
        "",
        "The captioner's word accuracy on held-out images (it learned from its own captioned pool, "
        f"{config.caption_pool} images, no task labels):",
        "",
        "| images | " + " | ".join(caption_quality["clean"]) + " |",
        "|---|" + "---|" * len(caption_quality["clean"]),
    ]
    lines += [
        f"| {k} | " + " | ".join(f"{v:.3f}" for v in q.values()) + " |" for k, q in caption_quality.items()
    ]
    lines += [
        "",
        f"Knowledge graph: {knowledge.graph.num_entities} entities, "
        f"{knowledge.graph.num_relations} relations, "
        f"TransE dim {knowledge.entity_embeddings.shape[1]}.",
        "",
        "## Zero-shot label embeddings (unseen colour-shape compositions)",
        "",
        f"- held-out classes: {', '.join(zero_shot.class_names[i] for i in zero_shot.unseen)}",
        f"- plain zero-shot accuracy among them: **{m['heldout_accuracy']:.3f}** (chance {m['chance']:.3f})",
        f"- generalised zero-shot over all {len(zero_shot.class_names)} classes: "
        f"seen {m['seen_accuracy']:.3f}, "
        f"unseen {m['unseen_accuracy']:.3f}, harmonic mean **{m['harmonic_mean']:.3f}** (no calibration: "
        "the seen classes' scores dominate, as usual in GZSL)",
        "",
    ]
    return "\n".join(lines + heads_lines(config, all_scores) + fashion_lines(fashion or {}))


def knowledge_encoder_name(config) -> str:
    from playground.fusion.text_encoder import load_text_encoder

    return {"minilm": "all-MiniLM-L6-v2 (offline)", "hashing": "the in-house hashing encoder (fallback)"}[
        load_text_encoder(config.text_encoder).name
    ]
