"""The FCT page's own-gallery panel: a folder of the user's images as a versioned gallery
(:mod:`playground.fct.versions`), upgraded step by step with this run's models, backfilled in part,
rolled back; the backfilling curve shows where the gallery stands."""

from pathlib import Path

import pandas as pd
import streamlit as st
from charts import show_chart
from common import image_grid, show_error
from image_input import MAX_UPLOAD_MB

from playground.errors import PlaygroundError
from playground.fct import results as fct
from playground.fct import versions
from playground.fct.charts import backfill_chart
from playground.fct.gallery_backfill import BACKFILL_ORDERS, backfill

STATUS_COLUMNS = {
    "active": "active",
    "name": "version",
    "model": "model",
    "route": "made by",
    "images": "images",
    "embedded": "embedded",
    "transformed": "transformed by h",
    "status": "status",
}


def gallery_panel(run: fct.FCTRun, runs_root: Path) -> None:
    """Create, upgrade, backfill and roll back a gallery of the user's images with ``run``'s models."""
    models = run.artifact_dir or run.path
    default = runs_root / "galleries" / run.name
    path = Path(st.text_input("Gallery folder", str(default), key="gallery_path")).expanduser()
    try:
        if not (path / "gallery.json").is_file() and not _create(path, models):
            return
        rows = versions.status(path)
        _status_table(rows)
        active = next(row for row in rows if row["active"])
        _actions(path, models, active, first=rows[0]["name"] == active["name"])
        _where_it_stands(run, active)
        _search(path, active)
    except PlaygroundError as err:
        show_error(err)


def _create(path: Path, models: Path) -> bool:
    """The form for a new gallery; True once it is made."""
    st.caption(
        f"No gallery at `{path}` yet. Give a folder of your images (any depth): each is embedded by this "
        "run's old model, with its side-info, as version v1."
    )
    images = st.text_input("Your images folder", key="gallery_images")
    if st.button("Create the gallery", disabled=not images, key="gallery_create"):
        skipped: list[str] = []
        with st.spinner("Embedding your images..."):
            made = versions.create(path, models, Path(images).expanduser(), skipped=skipped)
        left_out = f"; {len(skipped)} unreadable files left out" if skipped else ""
        st.success(f"v1 holds {len(made.images)} images{left_out}")
        return True
    return False


def _status_table(rows: list[dict]) -> None:
    table = pd.DataFrame(rows)[list(STATUS_COLUMNS)].rename(columns=STATUS_COLUMNS)
    table["active"] = table["active"].map({True: "●", False: ""})
    st.dataframe(table, hide_index=True, width="stretch")


def _actions(path: Path, models: Path, active: dict, first: bool) -> None:
    cols = st.columns(3)
    if active["model"] == "old":
        route = cols[0].radio(
            "Upgrade to the new model by",
            ["transform", "embed"],
            format_func={
                "transform": "transforming with h (no image read)",
                "embed": "re-embedding every image",
            }.get,
            key="gallery_route",
        )
        if cols[0].button("Upgrade", key="gallery_upgrade"):
            with st.spinner("Upgrading..."):
                versions.upgrade(path, models, route)
            st.rerun()
    elif active["route"] == "transform":
        share = cols[0].slider("Re-embed until this share (%)", 0, 100, 50, step=5, key="gallery_share")
        order = cols[1].selectbox("Order", BACKFILL_ORDERS, key="gallery_order")
        if cols[0].button("Backfill", key="gallery_backfill"):
            with st.spinner("Re-embedding..."):
                backfill(path, share / 100, order)
            st.rerun()
    if cols[2].button(
        "Roll back", disabled=first, key="gallery_rollback", help="activate the version before"
    ):
        versions.rollback(path)
        st.rerun()


def _where_it_stands(run: fct.FCTRun, active: dict) -> None:
    """The run's backfilling curves with the gallery's share marked, and what the rest would cost."""
    if active["model"] != "new" or active["route"] != "transform":
        return
    share = active["embedded"] / max(1, active["images"])
    study, cost = run.upgrade, fct.cost_summary(run)
    if "backfill_reembed_s" in cost:
        rest = active["transformed"] * cost["backfill_reembed_s"] / 1e4
        st.caption(
            f"{share:.0%} of {active['images']} images re-embedded. Re-embedding the other "
            f"{active['transformed']} would take about {rest:.1f} s at this run's measured speed "
            f"(images already decoded); transforming them took about "
            f"{active['images'] * cost['backfill_transform_s'] / 1e4:.2f} s."
        )
    if study.get("curves"):
        show_chart(
            backfill_chart(study["fractions"], study["curves"], study["areas"], mark=share),
            key="gallery_curve",
        )


def _search(path: Path, active: dict) -> None:
    """A query image against the active version only, through its FAISS index."""
    upload = st.file_uploader(
        f"Search {active['name']} with an image",
        type=["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"],
        key="gallery_query",
        max_upload_size=MAX_UPLOAD_MB,
    )
    if upload is None:
        return
    k = st.slider("Neighbours", 1, 20, 8, key="gallery_k")
    found = versions.search(path, upload.getvalue(), k)
    image_grid([image for image, _ in found], [f"{Path(image).name} · {d:.3f}" for image, d in found])
