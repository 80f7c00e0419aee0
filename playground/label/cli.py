"""``playground label``: labelling projects on your own images from the command line.

playground label init NAME --images DIR --classes "a,b,c" [--labelled DIR] [--set key=value]
playground label round NAME [--version V]       # score the pool, auto-label, queue for people
playground label retrain NAME [--policy scratch] # the next model version from people's labels
playground label status NAME                    # rounds, versions, annotators, agreement
playground label export NAME --format csv|json|folder --out PATH
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def add_label_parser(commands) -> None:
    label = commands.add_parser(
        "label",
        help="labelling projects on your own images: init, round, retrain, status, export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = label.add_subparsers(title="actions", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create a project from a folder of images (again: add new ones)")
    init.add_argument("name")
    init.add_argument("--images", required=True, help="folder of unlabelled images (searched recursively)")
    init.add_argument("--classes", required=True, help='comma-separated class names, e.g. "cat,dog,bird"')
    init.add_argument(
        "--labelled", help="an ImageFolder tree DIR/<class>/<image> of labels people already gave"
    )
    init.add_argument(
        "--model",
        help="start from a model: another project's version folder (label/NAME/vK) or a .safetensors",
    )
    init.add_argument(
        "--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="a project setting"
    )
    round_ = actions.add_parser("round", help="score the pool, auto-label what is certified, queue the rest")
    round_.add_argument("name")
    round_.add_argument("--version", type=int, help="refuse unless this is the newest model version")
    round_.add_argument("--order", default="uncertainty", choices=("uncertainty", "random"))
    round_.add_argument("--seed", type=int, default=0)
    retrain = actions.add_parser("retrain", help="train the next model version from people's labels")
    retrain.add_argument("name")
    retrain.add_argument("--policy", choices=("finetune_replay", "scratch"))
    retrain.add_argument("--seed", type=int, default=0)
    status = actions.add_parser("status", help="where a project stands (all projects without a name)")
    status.add_argument("name", nargs="?")
    status.add_argument("--json", action="store_true", help="print the summary as JSON")
    export = actions.add_parser("export", help="write the labels as CSV, JSON or an ImageFolder tree")
    export.add_argument("name")
    export.add_argument("--format", dest="kind", required=True, choices=("csv", "json", "folder"))
    export.add_argument("--out", required=True)
    for parser, handler in (
        (init, _init),
        (round_, _round),
        (retrain, _retrain),
        (status, _status),
        (export, _export),
    ):
        parser.set_defaults(handler=handler)


def _bar(description: str):
    """A tqdm bar driven by ``progress(done, total)`` callbacks, drawn from the first call on."""
    from tqdm import tqdm

    bars = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc=description, total=total, unit="img", file=sys.stderr, leave=False))
        bars[0].total = total
        bars[0].update(done - bars[0].n)  # redraws at most every tenth of a second

    return progress


def _changes(pairs: list[str]) -> dict:
    """The ``--set`` pairs as project settings (checked: an unknown key or a bad value is an error)."""
    from playground.core.config import apply_overrides
    from playground.label.project import ProjectSettings

    changes = apply_overrides({}, pairs, ProjectSettings)
    ProjectSettings.from_dict(changes)
    return changes


def _init(args) -> int:
    from playground.label.project import ProjectSettings, init_project
    from playground.store import Store

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    changes = _changes(args.settings)
    with Store() as store:
        report = init_project(
            store,
            args.name,
            args.images,
            classes,
            ProjectSettings.from_dict(changes),
            args.labelled,
            _bar("reading images"),
            args.model,
            changes,
        )
    print(f"project {report.project.name}: {report.added} images added, {report.labelled} labelled ones")
    for skipped in report.skipped:
        print(f"  skipped {skipped.path}: {skipped.reason}")
    print(f"next: playground label round {report.project.name}")
    return 0


def _round(args) -> int:
    from playground.label.rounds import run_round
    from playground.store import Store

    with Store() as store:
        report = run_round(store, args.name, args.version, args.order, args.seed, _bar("scoring the pool"))
    print(report.describe())
    print("next: label the queue on the Annotate page, then: playground label retrain " + args.name)
    return 0


def _retrain(args) -> int:
    from playground.label.retrain import retrain
    from playground.store import Store

    with Store() as store:
        version = retrain(store, args.name, args.policy, args.seed, _bar("training"))
    accuracy = version.detail["accuracy"]
    shown = "no held-out labels yet" if accuracy is None else f"held-out accuracy {accuracy:.3f}"
    print(f"{args.name} v{version.number}: {version.detail['labels']} labels, {shown} ({version.path})")
    return 0


def strict_json(value):
    """``value`` with NaN and infinities as null (JSON has no NaN; jq and browsers refuse it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def _status(args) -> int:
    from playground.label.project import open_project, project_names
    from playground.label.summary import project_summary
    from playground.store import Store

    with Store() as store:
        names = [args.name] if args.name else project_names(store)
        summaries = [project_summary(store, open_project(store, name)) for name in names]
    if args.json:
        print(json.dumps(strict_json(summaries), indent=2, default=str, allow_nan=False))
        return 0
    if not summaries:
        print("no labelling projects yet: playground label init NAME --images DIR --classes a,b,c")
    for summary in summaries:
        print(describe(summary))
    return 0


def describe(summary: dict) -> str:
    lines = [
        f"{summary['project']}: {summary['pool']} images, {summary['labelled']} labelled by people, "
        f"{summary['awaiting_review']} awaiting a reviewer; queue {summary['queue']['open']} open"
    ]
    for entry in summary["rounds"]:
        counts = ", ".join(f"{k} {v}" for k, v in entry.get("counts", {}).items())
        lines.append(f"  round {entry['number']} (v{entry['model_version']}, {entry['status']}): {counts}")
    for version in summary["versions"]:
        accuracy = version.get("accuracy")
        shown = "-" if accuracy is None else f"{accuracy:.3f}"
        lines.append(f"  v{version['version']}: {version['labels']} labels, held-out accuracy {shown}")
    return "\n".join(lines)


def _export(args) -> int:
    from playground.label.project import open_project
    from playground.label.summary import export_labels
    from playground.store import Store

    with Store() as store:
        path = export_labels(store, open_project(store, args.name), args.out, args.kind)
    print(f"wrote {path}")
    return 0
