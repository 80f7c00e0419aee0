"""``playground runs``: the user's runs with their status, their sweeps, then the shipped reference
runs; or one of them, shown by its report."""

from __future__ import annotations

from pathlib import Path


def add_runs_parser(commands) -> None:
    runs = commands.add_parser("runs", help="list runs with their status, then the reference runs")
    runs.add_argument("run", nargs="?", help="a run directory, or the name of yours or a reference run")
    runs.add_argument("--root", help="runs root (default $PLAYGROUND_HOME or ./runs)")
    runs.set_defaults(handler=cmd_runs)


def cmd_runs(args) -> int:
    """List the runs with their status (the user's, newest first, then their sweeps, then the shipped
    reference runs), or show one: its report; for a run that did not complete, its status and what its
    folder holds."""
    from playground.core.runs import list_runs, load_run, playground_home, reference_root
    from playground.sweep.runner import list_sweeps

    root = Path(args.root) if args.root else playground_home()
    if args.run:
        found = [p for p in (Path(args.run), root / args.run, reference_root() / args.run) if p.is_dir()]
        info = load_run(found[0] if found else root / args.run)
        status = info.status
        if status.state != "complete" or not info.report:
            print(f"{info.path}: {status.describe()}")
        held = ", ".join(sorted(p.name for p in info.path.iterdir()))
        print(info.report or f"no report; the run folder holds: {held}")
        return 0
    mine = list_runs(root)
    references = [r for r in list_runs(reference_root()) if r.name not in {m.name for m in mine}]
    sweeps = list_sweeps(root)
    if not mine and not sweeps:
        print(f"no runs under {root} yet; start one with `playground run recipes/classify_fashion.toml`")
    for info in mine:
        _print_run(info)
    for sweep in sweeps:  # `playground runs NAME` shows a sweep's report too
        state = "complete" if sweep.complete else "unfinished"
        print(f"{sweep.path.name:<45} {'sweep':<12} {state:<22} {sweep.counts()}")
    for info in references:
        _print_run(info)
    return 0


def _print_run(info) -> None:
    """One line of ``playground runs``: name, technique, state, reference or not, progress or headlines."""
    from playground.core.registry import headline_names
    from playground.core.status import describe_progress

    status = info.status
    state, detail = status.state, status.error
    if state == "running":
        fraction = status.progress.get("fraction")
        state += f" {fraction:.0%}" if fraction is not None else ""
        detail = describe_progress(status.progress)
    elif state == "complete":
        detail = "  ".join(
            f"{k}={info.metrics[k]:.4g}" for k in headline_names(info.experiment, info.metrics)[:2]
        )
    source = "reference" if info.reference else ""
    print(f"{info.name:<45} {info.experiment:<12} {state:<12} {source:<9} {detail}".rstrip())
