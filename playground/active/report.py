"""The active-learning run's metrics, curves (a results.json section), charts, report and annotation-queue
hand-off (:func:`hand_off`: the escalations go to the config's ``queue``, and what went where is the run's
:data:`~playground.active.results.QUEUE` section and a section of its report)."""

from __future__ import annotations

import math
from urllib.parse import quote

import numpy as np

from playground.active.charts import charts, learning_curve_chart, policy_chart
from playground.active.escalation import ESCALATE, OOD, ROUTE_NAMES
from playground.active.loop import LoopHistory, labels_to_target
from playground.active.results import CURVES, QUEUE, QueueFill, per_seed, read_curves, read_queue_fill
from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import metric_cell, runs_root_of

ANNOTATE_URL = "http://localhost:8501/annotate"  # the Annotate page of `playground app` (default port)


def _forgetting(history: LoopHistory) -> float:
    drops = [r.forgetting for r in history.rounds if not math.isnan(r.forgetting)]
    return float(np.mean(drops)) if drops else 0.0


def _compute(history: LoopHistory) -> float:
    return float(sum(r.train_seconds for r in history.rounds))


# where each escalation number is measured: the stream (held-out test images) or the calibration split
ESCALATION_SPLITS = {
    "auto_label_error": "test",
    "rate": "test",
    "escalated": "test",
    "deferred": "test",
    "ood_flagged": "test",
    "ood_auto_labelled": "test",
    "id_flagged": "test",
    "threshold": "val",
    "certified": "val",
    "calibration_bound": "val",
}


def _add_ratio(
    out: Metrics,
    prefix: str,
    needed: float,
    random_needed: float,
    budget: int,
    has_random: bool,
    **tags,
) -> None:
    """``labels_vs_random``; when random never reached the target within the budget, random needs
    more than ``budget`` labels and ``labels_vs_random_below = needed / budget`` bounds the ratio.
    ``tags`` name the strategy (and the curve) the ratio is about."""
    if random_needed < math.inf:
        measure, value = "labels_vs_random", needed / random_needed
    elif has_random:
        measure, value = "labels_vs_random_below", needed / budget
    else:
        return
    out.add(f"{prefix}/{measure}", value, "", "test", **tags, measure=measure)


def metrics(config, loops: dict[str, LoopHistory], policies: dict[str, LoopHistory], escalation) -> Metrics:
    """Per strategy (``strategy=``) and retraining policy (``policy=``) tagged records, and the escalation's;
    accuracies are on the curve test set, forgetting on the labelled (train) images."""
    out, target = Metrics(), config.target_accuracy
    random_labels = labels_to_target(loops["random"], target) if "random" in loops else math.inf
    for name, history in loops.items():
        needed = labels_to_target(history, target)
        goal = dict(strategy=name, target_accuracy=target)
        reached = float(needed < math.inf)
        out.add(f"al/{name}/reached_target", reached, "", "test", **goal, measure="reached_target")
        if needed < math.inf:
            tags = dict(goal, measure="labels_to_target")
            out.add(f"al/{name}/labels_to_target", needed, "labels", "test", **tags)
            _add_ratio(
                out, f"al/{name}", needed, random_labels, config.loop.budget, "random" in loops, **goal
            )
        _add_curve(out, f"al/{name}", history, strategy=name)
        seconds = _compute(history) + sum(history.series("acquire_seconds"))
        out.add(f"al/{name}/compute_s", seconds, "s", strategy=name, measure="compute_s")
    for policy, history in policies.items():
        key = f"al/policy/{policy}"
        out.add(f"{key}/forgetting", _forgetting(history), "", "train", policy=policy, measure="forgetting")
        out.add(f"{key}/compute_s", _compute(history), "s", policy=policy, measure="compute_s")
        _add_curve(out, key, history, policy=policy)
    for name, value in escalation.metrics().items():
        measure = name.rpartition("/")[2]
        out.add(name, value, "", ESCALATION_SPLITS.get(measure, ""), measure=measure)
    return out


def _add_curve(out: Metrics, prefix: str, history: LoopHistory, **tags) -> None:
    """``final_accuracy`` (tagged with the final label count) and ``mean_accuracy`` over the curve."""
    final, at = history.rounds[-1], dict(tags, labels=int(history.rounds[-1].labels))
    out.add(f"{prefix}/final_accuracy", final.accuracy, "", "test", **at, measure="final_accuracy")
    mean = float(np.mean(history.series("accuracy")))
    out.add(f"{prefix}/mean_accuracy", mean, "", "test", **tags, measure="mean_accuracy")


def curves(loops: dict[str, LoopHistory], policies: dict[str, LoopHistory], escalation) -> dict:
    """Everything the charts draw, as plain lists (the run's :data:`~playground.active.results.CURVES`
    results section)."""

    def one(h: LoopHistory) -> dict:
        return {
            k: h.series(k) for k in ("labels", "accuracy", "forgetting", "train_seconds", "acquire_seconds")
        }

    return {
        "strategies": {s: one(h) for s, h in loops.items()},
        "policies": {p: one(h) for p, h in policies.items()},
        "escalation": {
            **escalation.curve,
            "threshold": min(escalation.threshold.confidence, 1.0),
            "alpha": escalation.threshold.alpha,
            "routes": route_counts(escalation),
        },
    }


def write_artifacts(run_dir: RunDir, config, loops, policies, escalation, data) -> None:
    """The curves as the run's results section, and the learning-curve, policy and escalation charts."""
    saved = curves(loops, policies, escalation)
    run_dir.write_result(CURVES, saved)
    for chart in charts(per_seed([saved]), escalation.metrics(), config.target_accuracy):
        run_dir.save_chart(chart)


def strategy_table(values: dict[str, float], strategies: list[str], target: float) -> str:
    def ratio(s: str) -> str:
        below = f"al/{s}/labels_vs_random_below"
        return (
            f"< {values[below]:.2f}"
            if below in values
            else metric_cell(values, f"al/{s}/labels_vs_random", 2)
        )

    rows = [
        [
            f"`{s}`",
            metric_cell(values, f"al/{s}/labels_to_target", 0),
            ratio(s),
            metric_cell(values, f"al/{s}/final_accuracy"),
            metric_cell(values, f"al/{s}/mean_accuracy"),
            metric_cell(values, f"al/{s}/compute_s", 0),
        ]
        for s in strategies
    ]
    return markdown_table(
        [
            "strategy",
            f"labels to {target:.0%}",
            "× random's labels",
            "final accuracy",
            "mean accuracy over the curve",
            "compute s",
        ],
        rows,
    )


def policy_table(values: dict[str, float], policies: list[str]) -> str:
    rows = [
        [
            f"`{p}`",
            metric_cell(values, f"al/policy/{p}/final_accuracy"),
            metric_cell(values, f"al/policy/{p}/mean_accuracy"),
            metric_cell(values, f"al/policy/{p}/forgetting", 4),
            metric_cell(values, f"al/policy/{p}/compute_s", 0),
        ]
        for p in policies
    ]
    return markdown_table(
        [
            "policy",
            "final accuracy",
            "mean accuracy",
            "forgetting (accuracy lost on old labels per round)",
            "training s",
        ],
        rows,
    )


def escalation_table(values: dict[str, float]) -> str:
    names = [
        ("auto-label error (in-distribution stream)", "escalation/auto_label_error"),
        ("target α", "escalation/alpha"),
        ("calibrated confidence threshold", "escalation/threshold"),
        ("a threshold was certified (1 = yes; 0 = nothing is auto-labelled)", "escalation/certified"),
        ("certified bound on the calibration split", "escalation/calibration_bound"),
        ("escalation rate (stream a person must see)", "escalation/rate"),
        ("escalated within the budget", "escalation/escalated"),
        ("deferred to later rounds", "escalation/deferred"),
        ("OOD images flagged as OOD", "escalation/ood_flagged"),
        ("OOD images auto-labelled (silent errors)", "escalation/ood_auto_labelled"),
        ("in-distribution images flagged as OOD", "escalation/id_flagged"),
    ]
    return markdown_table(["", "value"], [[label, metric_cell(values, key)] for label, key in names])


def claims(
    strategies: list[str],
    target_accuracy: float,
    budget: int,
    values: dict[str, float],
    ratio_key: str = "labels_vs_random",
) -> list[str]:
    """The issue's two checks, stated against this run's numbers (``strategies`` and the label
    ``budget`` as configured, at ``target_accuracy``)."""
    others = [s for s in strategies if s != "random"]
    ratios = {s: values[f"al/{s}/{ratio_key}"] for s in others if f"al/{s}/{ratio_key}" in values}
    bounds = {s: values[f"al/{s}/{ratio_key}_below"] for s in others if f"al/{s}/{ratio_key}_below" in values}
    target = f"{target_accuracy:.0%}"
    if ratios:
        best = min(ratios, key=ratios.get)
        verdict = "meets" if ratios[best] <= 0.70 else "misses"
        line = (
            f"Best uncertainty strategy `{best}` needs {ratios[best]:.0%} of random's labels "
            f"to reach {target}"
        )
    elif bounds:
        best = min(bounds, key=bounds.get)
        verdict = "meets" if bounds[best] <= 0.70 else "cannot tell against"
        line = (
            f"Random did not reach {target} within {budget} labels; "
            f"best uncertainty strategy `{best}` did, so it needs less than {bounds[best]:.0%} "
            "of random's labels"
        )
    else:
        verdict, line = None, f"No uncertainty strategy reached {target} within {budget} labels"
    lines = [
        f"- {line}"
        + (
            f" ({verdict} the ≤ 70% target; Gal et al. 2017 report about 57% for BALD on MNIST)."
            if verdict
            else "."
        )
    ]
    error, alpha = values.get("escalation/auto_label_error"), values.get("escalation/alpha")
    if error is not None:
        verdict = "within" if error <= alpha + 0.01 else "ABOVE"
        lines.append(
            f"- Auto-label error on the held-out stream {error:.3f} at α = {alpha:.2f}: {verdict} α + 0.01."
        )
    return lines


def _data_line(config, data) -> str:
    ood = ", ".join(f"{n} ({v.shape[0]})" for n, v in data.ood.items()) or "none"
    return (
        f"{config.dataset}: pool {len(data.pool):,}, curve test set {len(data.test):,}, calibration split "
        f"{len(data.calibration):,}, stream {len(data.stream):,} in-distribution + OOD {ood}."
    )


def report_text(config, values: dict[str, float], device: str, data, fill: QueueFill | None = None) -> str:
    """The run's report.md; ``fill``: what :func:`hand_off` sent to the annotation queue."""
    loop, escalation = config.loop, config.escalation
    return "\n".join(
        [
            f"# Active learning on {config.dataset}",
            "",
            _data_line(config, data),
            f"Start from {loop.initial} balanced labels, add {loop.query} per round "
            f"up to {loop.budget}; {loop.mc_samples} MC-dropout samples score "
            f"{loop.pool_subset or 'all'} pool candidates per round; "
            f"a small CNN after Gal et al. 2017 (width {config.train.width}) trained each round "
            f"on {device}, seed {config.seed}.",
            "",
            "## Checks",
            *claims(config.methods, config.target_accuracy, loop.budget, values),
            "",
            "## Learning curves (retrained from scratch every round)",
            strategy_table(values, config.methods, config.target_accuracy),
            "",
            "![learning curves](learning_curves.png)",
            "",
            f"## Retraining policies (`{config.policy_strategy}` acquisition, "
            f"{config.train.replay} replayed labels)",
            policy_table(values, config.policies),
            "",
            "![policies](policies.png)",
            "",
            f"## Escalation (α = {escalation.alpha}, δ = {escalation.delta}, "
            f"budget {escalation.annotator_budget} per round, {escalation.stream_rounds} rounds)",
            escalation_table(values),
            "",
            "![escalation](escalation.png)",
            "",
            *(queue_section(fill) if fill is not None else []),
        ]
    )


def _mean_curve_metrics(config, metrics: Metrics, seeds: list[dict]) -> None:
    """Labels to target read off the mean curve over seeds, and each strategy's ratio to random's."""
    needed = {}
    for s in config.methods:
        labels = seeds[0]["strategies"][s]["labels"]
        mean = np.mean([c["strategies"][s]["accuracy"] for c in seeds], axis=0)
        hit = [n for n, a in zip(labels, mean) if a >= config.target_accuracy]
        if hit:
            needed[s] = hit[0]
            tags = dict(strategy=s, target_accuracy=config.target_accuracy, curve="mean")
            name = f"al/{s}/mean_curve/labels_to_target"
            metrics.add(name, hit[0], "labels", "test", **tags, measure="labels_to_target")
    for s, n in needed.items():
        _add_ratio(
            metrics,
            f"al/{s}/mean_curve",
            n,
            needed.get("random", math.inf),
            config.loop.budget,
            "random" in config.methods,
            strategy=s,
            target_accuracy=config.target_accuracy,
            curve="mean",
        )


def aggregate_text(config, metrics: Metrics, results) -> str:
    seeds = [read_curves(r.run_dir) for r in results]
    _mean_curve_metrics(config, metrics, seeds)
    parent, curves_over_seeds = RunDir(results[0].run_dir.parent), per_seed(seeds)
    parent.save_chart(learning_curve_chart(curves_over_seeds["strategies"], config.target_accuracy))
    parent.save_chart(policy_chart(curves_over_seeds["policies"]))
    values = metrics.values
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    return "\n".join(
        [
            f"# Active learning on {config.dataset}: {len(results)} seeds",
            "",
            "Mean ± standard deviation over seeds; curves show the mean ± one standard deviation.",
            "",
            "## Checks (labels to target read off the mean curve)",
            *claims(
                config.methods,
                config.target_accuracy,
                config.loop.budget,
                values,
                "mean_curve/labels_vs_random",
            ),
            "",
            "## Learning curves",
            strategy_table(values, config.methods, config.target_accuracy),
            "",
            "![learning curves](learning_curves.png)",
            "",
            "## Retraining policies",
            policy_table(values, config.policies),
            "",
            "![policies](policies.png)",
            "",
            "## Escalation",
            escalation_table(values),
            "",
            *queue_section(read_queue_fill(parent.path)),
            "## Seeds",
            links,
            "",
        ]
    )


def queue_items(escalation, data, run_name: str) -> list:
    """The stream samples the policy escalated or flagged as OOD, as annotation-queue items."""
    from playground.store import QueueItem

    chosen = ((escalation.routes == ESCALATE) | (escalation.routes == OOD)).nonzero().squeeze(1)
    view, probs = escalation.view, escalation.view.probs.mean(0)
    disagreement = view.disagreement
    items = []
    for i in chosen.tolist():
        image = escalation.images[i].permute(1, 2, 0).squeeze(-1).numpy()
        label = int(escalation.labels[i])
        items.append(
            QueueItem(
                external_id=f"{run_name}/stream/{i}",
                image=image,
                probs=probs[i].tolist(),
                uncertainty=float(view.uncertainty[i]),
                disagreement=float(disagreement[i]),
                reason="ood" if int(escalation.routes[i]) == OOD else "uncertain",
                class_names=list(data.pool.classes),
                meta={"true_label": label if label >= 0 else None, "run": run_name},
            )
        )
    return items


def enqueue_escalations(queue: str, escalation, data, run_name: str, home: str = "") -> tuple[int, str]:
    """Send the escalated and OOD-flagged stream samples to annotation queue ``queue`` in the
    database of runs root ``home`` (the default root when empty), where the Annotate page looks;
    ``(new items, the database)``. Nothing to send opens no database (and creates no empty queue)."""
    from playground.store import Store, default_url

    items = queue_items(escalation, data, run_name)
    with Store(default_url(home or None)) as store:
        return (store.enqueue(queue, items, model=run_name) if items else 0), store.location


def route_counts(escalation) -> dict[str, int]:
    """How many stream samples went down each route (auto, escalate, ood, defer)."""
    return {name: int((escalation.routes == i).sum()) for i, name in enumerate(ROUTE_NAMES)}


def hand_off(config, escalation, data, run_dir: RunDir) -> QueueFill:
    """Send what the escalation policy escalated or flagged as OOD to ``config.queue`` (when set), under
    the run folder's name as the model name, and record what went where as the run's ``QUEUE`` section."""
    routes = route_counts(escalation)
    fill = QueueFill(config.queue, routes["escalate"], routes["ood"], added=0)
    if fill.sent:
        home = str(runs_root_of(run_dir.path))
        added, database = enqueue_escalations(config.queue, escalation, data, run_dir.path.name, home)
        fill = QueueFill(fill.queue, fill.uncertain, fill.ood, added, database)
    run_dir.write_result(QUEUE, fill)
    return fill


def queue_summary(fill: QueueFill) -> str:
    """One sentence: which queue the run filled and with how many samples, or why it filled none."""
    if fill.sent:
        new = "" if fill.added is None or fill.added == fill.sent else f"; {fill.added:,} of them new there"
        return f"Sent {fill.sent:,} stream samples ({fill.counts()}) to annotation queue `{fill.queue}`{new}."
    if not fill.queue:
        return (
            f"Filled no annotation queue: {fill.why_empty}. It would have sent {fill.counts()} "
            "(run it again with `--set queue=NAME` to send them to queue NAME)."
        )
    return f"Filled no annotation queue: {fill.why_empty}."


def queue_section(fill: QueueFill) -> list[str]:
    """The report's annotation-queue section: the summary and how to open the queue."""
    lines = ["## Annotation queue", queue_summary(fill)]
    if fill.sent:
        where = f" in `{fill.database}`" if fill.database else ""
        lines += [
            "",
            f"Review them on the Annotate page: `playground app`, then **Annotate** "
            f"({ANNOTATE_URL}?queue={quote(fill.queue)}), queue `{fill.queue}`{where} (the app's sidebar "
            "must show the runs root holding that database, or `$PLAYGROUND_DB` must name it).",
        ]
    return [*lines, ""]
