"""``playground sweep``: a grid or samples of any recipe, with seeds, on local processes or Ray.

playground sweep recipes/classify_fashion.toml --grid lr=0.003,0.01 --grid width=16,32 --seeds 0,1
playground sweep recipes/classify_fashion.toml --sample 20      # from the recipe's [sweep.ranges]
playground sweep ... --backend ray [--address host:6379]        # Ray: this machine, or a cluster

A rerun of the same command skips the trials that finished; failed trials run again.
"""

from __future__ import annotations

import argparse
import os
import sys

BACKEND_CHOICES = ("auto", "local", "ray")


def add_sweep_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a recipe over a grid or samples of its config, with seeds, locally or on Ray",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("recipe", help="path to a recipe, e.g. recipes/classify_fashion.toml")
    sweep.add_argument("--preset", default="quick", help="preset in the recipe (default quick)")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value every trial uses",
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values to sweep (repeatable: a product)",
    )
    sweep.add_argument(
        "--sample", type=int, metavar="N", help="N points drawn from the recipe's [sweep.ranges]"
    )
    sweep.add_argument("--sample-seed", type=int, default=0, help="which N points --sample draws (default 0)")
    sweep.add_argument("--seeds", default="0", help="seeds each point runs with, comma-separated (default 0)")
    sweep.add_argument("--jobs", type=int, help="trials at once (default: this machine's cores)")
    sweep.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="auto: Ray when installed, else local processes",
    )
    sweep.add_argument("--address", help="a running Ray cluster, host:6379 or ray://host:10001")
    sweep.add_argument(
        "--metric", action="append", default=[], help="a metric for the table (default: headlines)"
    )
    sweep.add_argument("--out", help="the sweep folder (default <runs root>/sweep-<recipe>-<preset>)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=cmd_sweep)


def chosen_backend(backend: str, address: str | None) -> str:
    """``auto``: Ray when it can be imported (or an address is given), else local processes."""
    if backend != "auto":
        return backend
    if address:
        return "ray"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "local"
    return "ray"


def trials_of(args, config_cls) -> list:
    """The trials ``args`` describe: a grid, samples from the recipe's ranges, or both."""
    from playground.cli import _parse_ints
    from playground.core.config import load_recipe
    from playground.errors import ConfigError
    from playground.sweep.space import check_ranges, grid_trials, parse_grid, sample_trials

    seeds = _parse_ints(args.seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds takes different comma-separated integers like 0,1,2, not {args.seeds!r}")
    if not args.grid and args.sample is None:
        raise ConfigError("the sweep is empty: give --grid key=v1,v2 or --sample N with [sweep.ranges]")
    trials = grid_trials(parse_grid(args.grid, config_cls), seeds) if args.grid else []
    if args.sample is not None:
        recipe = load_recipe(args.recipe)
        ranges = check_ranges(recipe.sweep.get("ranges"), config_cls, f"recipe {recipe.path}")
        trials += sample_trials(ranges, args.sample, seeds, args.sample_seed)
    return trials


def cmd_sweep(args) -> int:
    from playground.core.progress import TqdmProgress
    from playground.core.runner import config_from_recipe
    from playground.sweep.sweep import run_sweep, sweep_folder

    sweep_folder(args.recipe, args.preset, args.out)  # a file in the way: refused before anything loads
    module, _ = config_from_recipe(args.recipe, args.preset, args.overrides)
    trials = trials_of(args, module.Config)
    progress = None if args.quiet else TqdmProgress()
    try:
        result = run_sweep(
            args.recipe,
            trials,
            args.preset,
            args.overrides,
            out=args.out,
            jobs=args.jobs or os.cpu_count() or 1,
            backend=chosen_backend(args.backend, args.address),
            address=args.address,
            metrics=args.metric,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    print((result.folder / "report.md").read_text(encoding="utf-8"), file=sys.stderr)
    print(result.folder)
    return 1 if result.failed else 0
