"""Where a labelling project stands, and its labels exported.

:func:`project_summary` gathers what the loop page and ``playground label status`` show: pool size,
each round's routes (labelled, auto-labelled, escalated, OOD), each model version's held-out
accuracy, every annotator's throughput and estimated accuracy (Dawid-Skene), and the agreement
between annotators (Krippendorff's alpha, overall and per class).

:func:`final_labels` is one row per image with a label: people's consensus (or a reviewer's, or a
labelled folder's) first, else the newest complete round's auto-label. It exports as CSV (cells made
spreadsheet-safe), JSON, or an ImageFolder tree of the original files.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import select

from playground.core.paths import check_output_file, check_output_folder
from playground.errors import DataFormatError
from playground.label.consensus import agreement, dawid_skene
from playground.label.project import Project, decision_rows, people_labels, pool_meta, pool_size
from playground.label.rounds import round_history
from playground.label.versions import versions
from playground.store import Store, spreadsheet_safe
from playground.store_schema import rounds, routes

EXPORT_FIELDS = ("path", "label", "class_name", "source", "held_out")


def project_summary(store: Store, project: Project) -> dict:
    people = people_labels(store, project)
    rows = decision_rows(store, project)
    return {
        "project": project.name,
        "classes": project.class_names,
        "pool": pool_size(store, project),
        "labelled": len(people.sample_ids),
        "awaiting_review": len(people.undecided),
        "queue": store.progress(project.name),
        "rounds": round_history(store, project),
        "versions": [
            {"version": v.number, **v.detail, "created_at": v.created_at} for v in versions(store, project)
        ],
        "annotators": _annotators(rows, people),
        "agreement": _agreement(people),
    }


def _annotators(rows, people) -> list[dict]:
    counts = Counter(row.annotator for row in rows)
    spans = {}
    for row in rows:
        first, last = spans.get(row.annotator, (row.created_at, row.created_at))
        spans[row.annotator] = (min(first, row.created_at), max(last, row.created_at))
    accuracy = {}
    if people.annotations is not None and people.annotations.num_annotators > 1:
        estimate = dawid_skene(people.annotations).annotator_accuracy
        accuracy = {people.annotations.annotator_name(i): float(a) for i, a in enumerate(estimate)}
    return [
        {
            "annotator": name,
            "decisions": count,
            "per_hour": count / max((spans[name][1] - spans[name][0]) / 3600, 1 / 60),
            "estimated_accuracy": accuracy.get(name),
        }
        for name, count in counts.most_common()
    ]


def _agreement(people) -> dict:
    if people.annotations is None:
        return {"alpha": None, "note": "no labels yet"}
    return agreement(people.annotations)


def final_labels(store: Store, project: Project) -> list[dict]:
    """One row per labelled image (``EXPORT_FIELDS``): people's labels, else the newest round's auto-label."""
    meta = pool_meta(store, project)
    people = people_labels(store, project)
    chosen = {
        sid: (label, "labelled folder" if meta[sid].get("source") == "labelled" else "people")
        for sid, label in zip(people.sample_ids, people.labels)
    }
    for sid, label in _auto_labels(store, project).items():
        chosen.setdefault(sid, (label, "auto"))
    return [
        {
            "path": meta[sid]["path"],
            "label": label,
            "class_name": project.class_names[label],
            "source": source,
            "held_out": bool(meta[sid].get("held_out")),
        }
        for sid, (label, source) in sorted(chosen.items(), key=lambda item: meta[item[0]]["path"])
    ]


def _auto_labels(store: Store, project: Project) -> dict[int, int]:
    def work(conn):
        newest = conn.execute(
            select(rounds.c.id)
            .where(
                rounds.c.project_id == project.id, rounds.c.status == "complete", rounds.c.model_version > 0
            )
            .order_by(rounds.c.number.desc())
            .limit(1)
        ).scalar()
        if newest is None:
            return {}
        query = select(routes.c.sample_id, routes.c.predicted).where(
            routes.c.round_id == newest, routes.c.route == "auto"
        )
        return dict(conn.execute(query).all())

    return store.read(work)


def export_labels(store: Store, project: Project, out: str | Path, kind: str) -> Path:
    """Write the labels as ``csv``, ``json`` or an ImageFolder tree (``folder``) at ``out``; an
    ``out`` that cannot be written (a folder for a file, a file for a folder, read-only) is refused
    before the labels are read."""
    if kind == "folder":
        out = check_output_folder(out, "--out")
    elif kind in ("csv", "json"):
        out = check_output_file(out, "--out")
    rows = final_labels(store, project)
    out = Path(out).expanduser()
    if kind in ("csv", "json"):
        out.parent.mkdir(parents=True, exist_ok=True)  # as the folder export does
    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
        out.write_text(buffer.getvalue(), encoding="utf-8")
    elif kind == "json":
        out.write_text(
            json.dumps({"project": project.name, "classes": project.class_names, "labels": rows}, indent=2)
        )
    elif kind == "folder":
        _image_folder(project, rows, out)
    else:
        raise DataFormatError(f"unknown export format {kind!r}; choose csv, json or folder")
    return out


def _image_folder(project: Project, rows: list[dict], out: Path) -> None:
    """``out/<class>/<path with / as __>``: copies of the original pool files (a labelled folder's stay)."""
    if out.exists() and any(out.iterdir()):
        raise DataFormatError(f"{out} is not empty; export an ImageFolder tree into a new folder")
    source = Path(project.images_dir)
    for row in rows:
        if row["source"] == "labelled folder":
            continue
        target = out / row["class_name"] / row["path"].replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / row["path"], target)


def share(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
