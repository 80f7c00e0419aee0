"""What a gallery folder's ``gallery.json`` must hold (:mod:`playground.fct.versions`), checked when it
is opened so that a damaged or hand-edited manifest is one :class:`DataFormatError` naming the key,
never a ``KeyError`` or ``TypeError`` later."""

from __future__ import annotations

from pathlib import Path

from playground.core.checkpoint import check_fields, listed, short
from playground.errors import DataFormatError

MANIFEST_FIELDS = {"format": str, "shard_size": range(1, 1 << 40), "versions": list[dict], "active": str}
VERSION_FIELDS = {
    "name": str,
    "run": str,
    "model": str,
    "route": str,
    "parent": (str, type(None)),
    "dim": range(1, 1 << 20),
    "digests": dict,
    "status": str,
}
FIX = "restore it from a backup or make the gallery again"


def check_manifest(path: Path, manifest: object) -> dict:
    """``manifest`` (``path/gallery.json`` decoded) when it is a gallery's: the keys above of their
    types, versions with plain folder names and an old or new model, the active one among them."""
    where = f"{path}/gallery.json"
    check_fields(manifest, where, MANIFEST_FIELDS, {"index": str}, error=DataFormatError, hint=FIX)
    names = []
    for number, version in enumerate(manifest["versions"], 1):
        check_fields(version, f"{where}: version {number}", VERSION_FIELDS, error=DataFormatError, hint=FIX)
        name = version["name"]
        if Path(name).name != name or name in ("", "..") or version["model"] not in ("old", "new"):
            raise DataFormatError(f"{where}: version {number} has a bad name or model ({short(version)})")
        names.append(version["name"])
    if manifest["active"] not in names or len(set(names)) != len(names):
        raise DataFormatError(
            f"{where}: the active version {short(manifest['active'])} is not one of {listed(names)}, "
            "or two versions share a name"
        )
    return manifest
