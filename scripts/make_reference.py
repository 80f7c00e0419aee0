"""Ship a finished run as a reference run, and keep the README's reference table in step.

    python scripts/make_reference.py add RUN_DIR --preset quick [--threads 1]  # copy into reference/
    python scripts/make_reference.py readme          # rewrite README.md's reference table
    python scripts/make_reference.py readme --check  # exit 1 if README.md disagrees with reference/

``add`` copies the run's metrics, typed results, report, plots, config and status, and only the model
files a page needs to score an image (:data:`KEEP`); the FCT embeddings keep the first
:data:`FCT_GALLERY` test images. It replaces the earlier reference of the same recipe and preset, records
the preset in ``PRESET`` and, with ``--threads``, the threads and CPUs it ran on when the run's status
did not record them. The whole reference folder must stay under :data:`BUDGET_MB`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- reference runs -->", "<!-- /reference runs -->"
BUDGET_MB = 25.0
FCT_GALLERY = 1500  # FCT test images kept for the page's query picker
KEEP = {  # the model files a page loads, per technique; every other *.safetensors stays behind
    "uncertainty": ("models/*.safetensors", "scores.safetensors"),
    "swav": ("swav.safetensors", "prototype_examples.safetensors"),
    "fct": ("embeddings.safetensors",),
}
SKIP_FOLDERS = ("gallery", "backfill_transform")  # large stores a page does not open


def kept(run: Path, key: str) -> list[Path]:
    """The files of ``run`` a reference keeps."""
    models = {p for pattern in KEEP.get(key, ()) for p in run.glob(pattern)}
    files = []
    for path in sorted(run.rglob("*")):
        relative = path.relative_to(run)
        if not path.is_file() or relative.parts[0] in SKIP_FOLDERS or relative.name.startswith("."):
            continue
        if path.suffix == ".safetensors" and path not in models:
            continue
        files.append(path)
    return files


def trim_fct_embeddings(path: Path, keep: int = FCT_GALLERY) -> None:
    """Keep the first ``keep`` test images of an FCT run's embeddings (and their projections)."""
    from playground.core.checkpoint import load_checkpoint, save_checkpoint

    tensors, metadata = load_checkpoint(path)
    if len(tensors["labels"]) <= keep:
        return
    shown = tensors["projection_index"] < keep
    small = {
        name: value[shown] if name.startswith("projection_") else value[:keep]
        for name, value in tensors.items()
    }
    save_checkpoint(path, small, {**metadata, "reference_kept_first": keep})


def add(run: Path, preset: str, threads: int | None, cpus: int | None) -> Path:
    from playground.core.runs import list_runs, load_run, reference_root
    from playground.core.status import read_status, write_status

    info, status = load_run(run), read_status(run)
    if status.state != "complete":
        raise SystemExit(f"{run} is {status.state}, not complete: only finished runs can be references")
    root = reference_root()
    recipe = run.name.rsplit("-", 2)[0]
    for old in list_runs(root):  # one reference per recipe and preset
        if old.name.rsplit("-", 2)[0] == recipe and (old.path / "PRESET").read_text().strip() == preset:
            shutil.rmtree(old.path)
    target = root / run.name
    for path in kept(run, info.experiment):
        destination = target / path.relative_to(run)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    if info.experiment == "fct" and (target / "embeddings.safetensors").is_file():
        trim_fct_embeddings(target / "embeddings.safetensors")
    (target / "PRESET").write_text(preset + "\n", encoding="utf-8")
    if threads and not status.threads:
        write_status(target, dataclasses.replace(status, threads=threads, cpus=cpus or status.cpus))
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    if size > BUDGET_MB:
        raise SystemExit(f"reference/ holds {size:.1f} MB, over the {BUDGET_MB} MB budget: keep fewer files")
    print(f"{target} ({size:.1f} MB in reference/)")
    return target


def readme(check: bool) -> int:
    from readme_index import sync_section

    from playground.core.reference import reference_table

    command = "python scripts/make_reference.py readme"
    return sync_section(START, END, reference_table(), check, "reference table", command)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    adding = actions.add_parser("add")
    adding.add_argument("run", type=Path)
    adding.add_argument("--preset", required=True)
    adding.add_argument("--threads", type=int, help="the torch threads it ran on, if its status lacks them")
    adding.add_argument("--cpus", type=int, help="the machine's CPUs, if its status lacks them")
    table = actions.add_parser("readme")
    table.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "add":
        add(args.run, args.preset, args.threads, args.cpus)
        return 0
    return readme(args.check)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
