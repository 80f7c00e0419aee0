"""The ``playground`` command: run recipes, start the app, list runs, check datasets.

Imports stay light at the top so ``playground --help`` answers at once; each command
imports what it needs. A :class:`~playground.errors.PlaygroundError` is printed as one
``error: ...`` line (exit code 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from playground.accounts_cli import ROLE_CHOICES, add_users_parser  # noqa: F401 - ROLE_CHOICES for callers
from playground.errors import ConfigError, PlaygroundError
from playground.gallery_cli import add_gallery_parser
from playground.label.cli import add_label_parser
from playground.runs_cli import add_runs_parser
from playground.sweep.cli import add_sweep_parser

APP_FILE = Path(__file__).resolve().parent.parent / "apps" / "app.py"
BENCH_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "latency_fashion.toml"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    try:
        return args.handler(args) or 0
    except PlaygroundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playground",
        description="Deep-learning techniques playground.",
        epilog=techniques_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="run a recipe and print its run directory")
    run.add_argument("recipe", help="path to a recipe, e.g. recipes/classify_fashion.toml")
    run.add_argument("--preset", default="quick", help="preset in the recipe (quick or full; default quick)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable), e.g. --set epochs=3",
    )
    run.add_argument("--seed", type=int, help="random seed (overrides the recipe)")
    run.add_argument("--seeds", help="several seeds, comma-separated: metrics become mean and :std")
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="with --seeds: run this many seeds at once, each in its own process (default 1)",
    )
    run.add_argument("--out", help="runs root (default $PLAYGROUND_HOME or ./runs)")
    run.add_argument("--device", help="auto, cuda, mps or cpu")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(handler=cmd_run)

    add_latency_parser(commands)

    app = commands.add_parser("app", help="start the Streamlit app on localhost")
    app.add_argument("--port", type=int, default=8501)
    app.add_argument("--address", default="127.0.0.1", help="bind address (default localhost only)")
    app.set_defaults(handler=cmd_app)

    add_runs_parser(commands)

    data = commands.add_parser("data", help="which datasets are available and where")
    data.add_argument("--root", help="a data root to check as well (torchvision layout or ImageFolder)")
    data.set_defaults(handler=cmd_data)

    add_backfill_parser(commands)
    add_gallery_parser(commands)
    add_jobs_parser(commands)
    add_users_parser(commands)
    add_label_parser(commands)
    add_sweep_parser(commands)
    return parser


def add_jobs_parser(commands) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="background runs (what the app's Run buttons start): list, start, cancel",
        description="With no action: list the newest jobs.",
    )
    actions = jobs.add_subparsers(dest="action", metavar="ACTION")
    start = actions.add_parser(
        "start", help="run a recipe in the background: jobs start RECIPE [run options]"
    )
    start.add_argument("run_args", nargs=argparse.REMAINDER, help="what `playground run` takes")
    cancel = actions.add_parser("cancel", help="stop a queued or running job and every process it started")
    cancel.add_argument("id", type=int)
    work = actions.add_parser("work", help=argparse.SUPPRESS)  # the worker a job starts
    work.add_argument("id", type=int)
    jobs.set_defaults(handler=cmd_jobs)


def cmd_jobs(args) -> int:
    from playground.jobs import Jobs

    jobs = Jobs()
    if args.action == "work":
        return jobs.work(args.id)
    if args.action == "cancel":
        print(jobs.cancel(args.id))
        return 0
    if args.action == "start":
        parsed = build_parser().parse_args(
            ["run", *args.run_args]
        )  # bad options fail here, not in the worker
        job = jobs.submit(args.run_args, Path(parsed.recipe).stem)
        print(
            f"job {job.id} queued: {job.command}\nfollow it with `playground jobs`; its log: {_log(job.id)}"
        )
        return 0
    listed = jobs.list()
    if not listed:
        print("no jobs yet; start one from a page or with `playground jobs start RECIPE`")
    for job in listed:
        print(f"{job.id:>4}  {job.status:<11} {job.title:<28} {job.describe()}")
    return 0


def _log(job_id: int) -> Path:
    from playground.jobs import log_path

    return log_path(job_id)


def techniques_epilog() -> str:
    """The techniques and their recipes, from the one list in :mod:`playground.core.registry`."""
    from playground.core.registry import TECHNIQUES

    lines = ["techniques (key: recipes):"]
    for technique in TECHNIQUES:
        recipes = ", ".join(f"recipes/{p.name}" for p in technique.recipes)
        lines.append(f"  {technique.key:<12} {technique.title}: {recipes}")
    return "\n".join(lines)


def add_backfill_parser(commands) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="FCT: transform a stored gallery into the new model's space "
        "(under torchrun the workers split the shards)",
    )
    backfill.add_argument(
        "gallery", help="a gallery store folder (old embeddings + side-info), e.g. RUN/gallery"
    )
    backfill.add_argument("--transformation", required=True, help="RUN/transformation.safetensors")
    backfill.add_argument("--out", required=True, help="folder for the backfilled gallery")
    backfill.set_defaults(handler=cmd_backfill)


def cmd_run(args) -> int:
    from playground.core import distributed

    distributed.init_from_env()  # under torchrun: join the process group (a no-op otherwise)
    main_process = distributed.is_main_process()
    try:
        result = _run(args, show_progress=main_process and not args.quiet)
    finally:
        distributed.shutdown()
    if main_process:  # under torchrun only rank 0 reports
        _print_result(result)
    return 0


OWN_MODEL_FLAGS = (  # (flag, config key, help): a team's own model in the latency benchmark
    ("--model", "model", "torchvision:NAME, timm:NAME or a .onnx file (random weights unless --weights)"),
    ("--weights", "weights", "a .safetensors (or .pt/.pth state dict) for a torchvision/timm model"),
    ("--input-shape", "input_shape", "CxHxW, e.g. 3x224x224 (default: the model's own)"),
    ("--num-classes", "num_classes", "outputs of the architecture (default: its own)"),
    ("--calibration", "calibration_dir", "a folder of your images for int8 calibration"),
    ("--eval", "eval_dir", "an ImageFolder (DIR/<class>/<image>) for accuracy, ECE and corrupted accuracy"),
    ("--far", "far_dir", "a folder of far-OOD images (default: digits)"),
    ("--max-drop", "max_drop", "pick the fastest variant within this many accuracy points"),
    ("--min-agreement", "min_agreement", "pick the fastest variant with at least this argmax agreement"),
    ("--pick-batch", "pick_batch", "the batch size the pick is made at (default: the smallest)"),
)
NUMBER_KEYS = {"num_classes", "max_drop", "min_agreement", "pick_batch"}


def _number(value: str, key: str) -> str:
    try:
        return str(float(value) if key in ("max_drop", "min_agreement") else int(value))
    except ValueError:
        raise ConfigError(f"--{key.replace('_', '-')} must be a number, not {value!r}") from None


def add_latency_parser(commands) -> None:
    bench = commands.add_parser(
        "latency",
        aliases=["bench"],  # its name before the technique had one name everywhere
        help="the latency benchmark (recipes/latency_fashion.toml): every fp32/bf16/fp16/int8 variant, "
        "pruning and distillation, latency and accuracy side by side",
    )
    bench.add_argument("--preset", default="quick", help="quick (a look) or full (the figures to report)")
    bench.add_argument("--models-from", help="a latency run folder: re-time its saved models, no training")
    bench.add_argument(
        "--methods",
        "--variants",  # its name before every technique's subset field was `methods`
        dest="methods",
        help="comma-separated variants (default: the recipe's), e.g. torch_fp32,ort_fp32,ort_int8_static",
    )
    bench.add_argument("--batch-sizes", help="comma-separated batch sizes, e.g. 1,32,64")
    for flag, key, text in OWN_MODEL_FLAGS:
        bench.add_argument(flag, dest=key, help=text)
    bench.add_argument("--threads", type=int, help="torch and ONNX Runtime intra-op threads")
    bench.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any other config value (repeatable)",
    )
    for name in ("seed", "out", "device"):
        bench.add_argument(f"--{name}", type=int if name == "seed" else str)
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(handler=cmd_latency)


def cmd_latency(args) -> int:
    """``playground run recipes/latency_fashion.toml`` with the benchmark's own options spelled out."""
    overrides = list(args.overrides)
    if args.models_from:
        overrides.append(f"models_from={_quoted(args.models_from)}")
    if args.methods:
        overrides.append("methods=[" + ", ".join(_quoted(v.strip()) for v in args.methods.split(",")) + "]")
    if args.batch_sizes:
        overrides.append(
            f"batch_sizes=[{', '.join(str(b) for b in _parse_ints(args.batch_sizes, '--batch-sizes'))}]"
        )
    if args.threads is not None:
        overrides.append(f"threads={args.threads}")
    for _, key, _ in OWN_MODEL_FLAGS:
        value = getattr(args, key)
        if value is not None:
            number = key in NUMBER_KEYS
            overrides.append(f"{key}={_number(value, key) if number else _quoted(value)}")
    run_args = argparse.Namespace(
        recipe=str(BENCH_RECIPE),
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        seeds=None,
        jobs=1,
        out=args.out,
        device=args.device,
        quiet=args.quiet,
    )
    _print_result(_run(run_args, show_progress=not args.quiet))
    return 0


def _run(args, show_progress: bool):
    from playground.core.progress import TqdmProgress

    progress = TqdmProgress() if show_progress else None
    try:
        return run_parsed(args, progress)
    finally:
        if progress is not None:
            progress.close()


def run_parsed(args, progress=None):
    """Run the recipe ``playground run``'s parsed ``args`` name (the CLI and background jobs)."""
    from playground.core.runner import run_recipe

    overrides = list(args.overrides)
    for key in ("seed", "out", "device"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={_quoted(getattr(args, key))}")
    seeds = None
    if args.seeds is not None:
        seeds = _parse_ints(args.seeds)
        if not seeds:
            from playground.errors import ConfigError

            raise ConfigError(f"--seeds takes comma-separated integers like 0,1,2, not {args.seeds!r}")
    return run_recipe(args.recipe, args.preset, overrides, seeds=seeds, progress=progress, jobs=args.jobs)


def _print_result(result) -> None:
    from playground.core.runs import format_number

    per_class = {r.name for r in result.metrics.select(class_name=...)}  # too many lines to print
    for name, value in result.metrics.values.items():
        if name not in per_class:
            print(
                f"{name} = {format_number(value)} {result.metrics.units.get(name, '')}".rstrip(),
                file=sys.stderr,
            )
    print(result.run_dir)


def _quoted(value) -> str:
    from playground.core.config import toml_value

    return str(value) if isinstance(value, int) else toml_value(str(value))


def _parse_ints(text: str, option: str = "--seeds") -> list[int]:
    from playground.errors import ConfigError

    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers like 0,1,2, not {text!r}") from None


def cmd_backfill(args) -> int:
    """Backfill this worker's shards. torchrun (or any launcher) sets RANK and WORLD_SIZE;
    workers need no process group because each owns the shards ``i % WORLD_SIZE == RANK``."""
    import time

    from playground.core.paths import check_output_folder
    from playground.fct.gallery import GalleryStore, backfill_by_transformation
    from playground.fct.transformation import load_transformation, transform

    check_output_folder(args.out, "--out")  # before the gallery and h are read
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    gallery, h = GalleryStore.open(args.gallery), load_transformation(args.transformation)
    start = time.perf_counter()
    backfill_by_transformation(
        gallery, lambda old, side: transform(h, old, side), args.out, h.new_dim, rank, world
    )
    print(
        f"worker {rank} of {world}: backfilled its shards of {gallery.count} images in "
        f"{time.perf_counter() - start:.2f} s -> {args.out}",
        file=sys.stderr,
    )
    return 0


def cmd_app(args) -> int:
    if not APP_FILE.is_file():
        raise PlaygroundError(
            f"the app is not next to this install ({APP_FILE} missing); "
            "install from a source checkout with `pip install -e .`"
        )
    check_address(args.address)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
    ]
    print(f"starting the playground on http://{args.address}:{args.port}", file=sys.stderr)
    return subprocess.call(command, cwd=APP_FILE.parent.parent, env=os.environ.copy())


def check_address(address: str) -> None:
    """Refuse an address other machines can reach unless an enabled admin account exists."""
    import ipaddress

    try:
        local = address == "localhost" or ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name
        local = False
    if local:
        return
    from playground.accounts import Accounts
    from playground.errors import AccessError

    if not Accounts().has_admin():
        raise AccessError(
            f"the app would listen on {address}, where other machines can reach it, but no enabled "
            "admin account exists, so anyone could annotate under any name; create one with "
            "`playground users add NAME --role admin` (or keep the default --address 127.0.0.1)"
        )


def cmd_data(args) -> int:
    from playground.data.catalog import dataset_status

    for row in dataset_status(args.root):
        mark = "yes" if row.available else "no "
        print(f"{row.name:<14} {mark}  {row.where:<40} {row.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
