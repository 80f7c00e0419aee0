"""A gallery that knows its models: every version is one embedding space, and queries never mix them.

Layout of a gallery folder::

    GALLERY/gallery.json        format, versions (in order), the active one
    GALLERY/images.json         the images, append-only: id -> path
    GALLERY/v1/shard-00000.safetensors ...   per shard: ids, vec, how (0 embedded, 1 transformed), [side]
    GALLERY/v1/index-flat.faiss, index.json  the version's FAISS index and what it was built from

- ``create`` embeds a folder of images with an FCT run's old model and side-info model (version v1).
- ``upgrade`` makes the next version from the active one, either by **transforming** the stored old
  vectors and side-info with the run's h (FCT, no image is read) or by **re-embedding** every image
  with the new model; the new version becomes active only when every shard is written.
- ``add`` appends new images to every complete version, each through its own model, so a rollback
  never finds a version short of images.
- ``rollback`` activates the version before the active one (never past the first).
- ``search`` embeds the query with the active version's query model (old for v1, new after an
  upgrade) and ranks that version's vectors only, through its own FAISS index
  (:mod:`~playground.fct.gallery_index`): a query is never compared with another space.

Every shard is written whole (a temporary file renamed), and a build that is killed resumes where it
stopped: shards already written are checked (ids, width) and kept. A version's record carries the
digest of each weight file it used, so a shard can always be traced to the model that made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from playground.core.checkpoint import TensorSpec, load_checkpoint, save_checkpoint, short, write_json_whole
from playground.core.paths import check_output_folder
from playground.core.progress import Progress, report
from playground.core.runs import read_json
from playground.data.folder import images_as_tensor, list_images, read_image
from playground.data.image_file import UnreadableImageError
from playground.errors import CheckpointError, ConfigError, DataFormatError, DataNotFoundError
from playground.fct.gallery_checks import check_manifest
from playground.fct.gallery_index import INDEX_KINDS, search_index, version_index
from playground.fct.model_pack import ModelPack

FORMAT = "playground.gallery/1"
ROUTES = ("embed", "transform")
HOW = {"embedded": 0, "transformed": 1}


@dataclass
class Gallery:
    path: Path
    manifest: dict
    images: list[str]

    # ----------------------------------------------------------------- opening and saving

    @classmethod
    def open(cls, path: str | Path) -> Gallery:
        path = Path(path).expanduser()
        if not (path / "gallery.json").is_file():
            raise DataNotFoundError(
                f"{path} is not a gallery (no gallery.json); make one with `playground gallery create`"
            )
        manifest, images = read_json(path / "gallery.json"), read_json(path / "images.json")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise DataFormatError(
                f"{path}/gallery.json is format {short(found)}; this playground reads {FORMAT!r}"
            )
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
            raise DataFormatError(f"{path}/images.json must be a list of image paths")
        return cls(path, check_manifest(path, manifest), images)

    def save(self) -> None:
        write_json_whole(self.path / "images.json", self.images)
        write_json_whole(self.path / "gallery.json", self.manifest)

    @property
    def versions(self) -> list[dict]:
        return self.manifest["versions"]

    @property
    def active(self) -> dict:
        return self.version(self.manifest["active"])

    def version(self, name: str) -> dict:
        for version in self.versions:
            if version["name"] == name:
                return version
        raise ConfigError(
            f"{self.path} has no version {name!r}; it has {', '.join(v['name'] for v in self.versions)}"
        )

    def shard_size(self) -> int:
        return int(self.manifest["shard_size"])

    def shard_count(self) -> int:
        return -(-len(self.images) // self.shard_size())

    def shard_path(self, version: dict, index: int) -> Path:
        return self.path / version["name"] / f"shard-{index:05d}.safetensors"

    # ----------------------------------------------------------------- shards

    def read_shard(self, version: dict, index: int) -> dict[str, torch.Tensor]:
        """A shard, checked: the ids it should hold, vectors of the version's width."""
        path = self.shard_path(version, index)
        ids = self._ids(index)
        specs = {
            "ids": TensorSpec((len(ids),), "int"),
            "vec": TensorSpec((len(ids), version["dim"])),
            "how": TensorSpec((len(ids),), "int"),
            "side": TensorSpec((len(ids), None), optional=True),
        }
        repair = f"rebuild it with `playground gallery repair {self.path}`"
        try:
            shard, _ = load_checkpoint(path, tensors=specs, hint=repair)
        except CheckpointError as err:
            raise DataFormatError(f"version {version['name']}: {err}") from None
        if not torch.equal(shard["ids"], ids):
            raise DataFormatError(
                f"shard {path.name} of {version['name']} holds other ids than {int(ids[0])}..{int(ids[-1])}; "
                f"{repair}"
            )
        return shard

    def _ids(self, index: int) -> torch.Tensor:
        size = self.shard_size()
        return torch.arange(index * size, min((index + 1) * size, len(self.images)))

    def shard_ok(self, version: dict, index: int) -> bool:
        try:
            self.read_shard(version, index)
            return True
        except DataFormatError:
            return False

    def vectors(self, version: dict) -> torch.Tensor:
        """Every vector of ``version`` in id order, float32."""
        return torch.cat([self.read_shard(version, i)["vec"].float() for i in range(self.shard_count())])

    def index(self, version: dict):
        """The version's FAISS index (:mod:`~playground.fct.gallery_index`), rebuilt if its shards changed."""
        shards = [self.shard_path(version, i) for i in range(self.shard_count())]
        kind = self.manifest.get("index", "flat")
        return version_index(self.path / version["name"], shards, lambda: self.vectors(version), kind)

    def images_of(self, ids: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        channels, size, _ = shape
        arrays = []
        for i in ids.tolist():
            try:
                arrays.append(read_image(Path(self.images[i]), size, channels))
            except UnreadableImageError as err:
                raise DataNotFoundError(
                    f"gallery image {self.images[i]} cannot be read ({err.problem}); restore it"
                ) from None
        return images_as_tensor(arrays)


# --------------------------------------------------------------------- building versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _shard_writer(gallery: Gallery, version: dict, pack: ModelPack, route: str) -> Callable[[int], dict]:
    """What a version's shard holds, by ``route``: embedded by the version's model, or h(old, side)."""
    parent = gallery.version(version["parent"]) if version.get("parent") else None

    @torch.no_grad()
    def shard(index: int) -> dict[str, torch.Tensor]:
        ids = gallery._ids(index)
        if route == "transform":
            source = gallery.read_shard(parent, index)
            if "side" not in source:
                raise ConfigError(
                    f"{parent['name']} stores no side-info, so it cannot be transformed; re-embed instead"
                )
            if source["side"].shape[1] != pack.transformation.side_dim:
                raise DataFormatError(
                    f"{parent['name']} stores side-info {source['side'].shape[1]} wide, the run's h takes "
                    f"{pack.transformation.side_dim}; re-embed instead"
                )
            vec = pack.transformation(source["vec"].float(), source["side"].float())
            return {"ids": ids, "vec": vec.detach(), "how": torch.full_like(ids, HOW["transformed"])}
        images = gallery.images_of(ids, pack.input_shape)
        out = {
            "ids": ids,
            "vec": pack.embed(version["model"], images),
            "how": torch.full_like(ids, HOW["embedded"]),
        }
        if version["model"] == "old":
            out["side"] = pack.embed("side", images)
        return out

    return shard


def write_shard(gallery: Gallery, version: dict, index: int, tensors: dict[str, torch.Tensor]) -> None:
    """Store one shard whole (a temporary file renamed), vectors and side-info in float16."""
    for key in ("vec", "side"):
        if key in tensors:
            tensors[key] = tensors[key].to(torch.float16)
    save_checkpoint(gallery.shard_path(version, index), tensors, {"version": version["name"]})


def build(
    gallery: Gallery, version: dict, pack: ModelPack, progress: Progress = None, route: str = ""
) -> int:
    """Write every shard of ``version`` that is not already whole, by ``route`` (default: the
    version's own); returns how many were written."""
    check_pack(pack, version)
    writer, written = _shard_writer(gallery, version, pack, route or version["route"]), 0
    total = gallery.shard_count()
    for index in range(total):
        if not gallery.shard_ok(version, index):
            write_shard(gallery, version, index, writer(index))
            written += 1
        report(progress, f"build {version['name']}", index + 1, total)
    version["status"] = "ready"
    gallery.save()
    gallery.index(version)
    return written


def check_pack(pack: ModelPack, version: dict) -> None:
    for role, digest in version["digests"].items():
        if pack.digests.get(role) != digest:
            raise ConfigError(
                f"{version['name']} was made with other weights ({role}: {digest}, this run has "
                f"{pack.digests.get(role)}); give the run {version['run']}"
            )


def readable_images(files: list[Path], shape: tuple[int, int, int], skipped: list[str] | None) -> list[str]:
    """The absolute paths of the files that decode as images; the others go to ``skipped``."""
    channels, size, _ = shape
    good = []
    for file in files:
        try:
            read_image(file, size, channels)
            good.append(str(file.resolve()))
        except UnreadableImageError:  # a bad pixel cap ($PLAYGROUND_MAX_IMAGE_PIXELS) is raised instead
            if skipped is not None:
                skipped.append(str(file))
    if not good and files:
        raise DataFormatError(f"none of the {len(files)} image files could be decoded (first: {files[0]})")
    return good


def create(
    path: str | Path,
    run: str | Path,
    images: str | Path,
    shard_size: int = 1024,
    progress: Progress = None,
    skipped: list[str] | None = None,
    index: str = "flat",
) -> Gallery:
    """A new gallery of the images under ``images``, embedded by the run's old model (v1), searched
    through a FAISS ``index`` per version (flat or hnsw); run again after a kill to resume. Files
    that do not decode are left out and listed in ``skipped``."""
    path = check_output_folder(path, "gallery folder")  # before the models load and images decode
    pack = ModelPack.load(run)
    if (path / "gallery.json").is_file():
        gallery = Gallery.open(path)
        first = gallery.versions[0]
        check_pack(pack, first)
        if first["status"] == "ready":
            raise ConfigError(f"{path} already holds a gallery; add images with `playground gallery add`")
    else:
        if shard_size < 1:
            raise ConfigError(f"shard_size must be at least 1, got {shard_size}")
        if index not in INDEX_KINDS:
            raise ConfigError(f"unknown index kind {index!r}; choose {' or '.join(INDEX_KINDS)}")
        files = readable_images(list_images(images), pack.input_shape, skipped)
        path.mkdir(parents=True, exist_ok=True)
        first = _version("v1", pack, "old", "embed", None)
        manifest = {
            "format": FORMAT,
            "shard_size": shard_size,
            "index": index,
            "versions": [first],
            "active": "v1",
        }
        gallery = Gallery(path, manifest, files)
        gallery.save()
    build(gallery, first, pack, progress)
    return gallery


def _version(name: str, pack: ModelPack, model: str, route: str, parent: str | None) -> dict:
    roles = (
        ("old", "side") if model == "old" else ("new", "transformation") if route == "transform" else ("new",)
    )
    dim = pack.transformation.new_dim if model == "new" else pack.transformation.old_dim
    return {
        "name": name,
        "run": str(pack.run),
        "model": model,
        "route": route,
        "parent": parent,
        "dim": int(dim),
        "digests": {role: pack.digests[role] for role in roles},
        "created": now(),
        "status": "building",
    }


def upgrade(path: str | Path, run: str | Path, route: str = "transform", progress: Progress = None) -> dict:
    """The next version from the active one, by ``route``; active once complete. Resumes a killed one."""
    if route not in ROUTES:
        raise ConfigError(f"unknown upgrade route {route!r}; choose {' or '.join(ROUTES)}")
    gallery, pack = Gallery.open(path), ModelPack.load(run)
    newest = gallery.versions[-1]
    if newest["status"] == "building" and newest["route"] == route and newest["run"] == str(pack.run):
        version = newest  # resume
    elif newest["status"] == "building":
        raise ConfigError(
            f"{newest['name']} is half built ({newest['route']}); finish it first with the same command"
        )
    else:
        parent = gallery.active
        if parent["model"] == "new":
            raise ConfigError(f"{parent['name']} is already in the new model's space; nothing to upgrade")
        if route == "transform" and pack.digests["old"] != parent["digests"].get("old"):
            raise ConfigError(
                f"{pack.run.name}'s h was trained for another old model than {parent['name']}'s "
                f"({pack.digests['old']} against {parent['digests'].get('old')}); "
                "re-embed instead (--route embed)"
            )
        version = _version(f"v{len(gallery.versions) + 1}", pack, "new", route, parent["name"])
        gallery.versions.append(version)
        gallery.save()
    build(gallery, version, pack, progress)
    gallery.manifest["active"] = version["name"]
    gallery.save()
    return version


def add(
    path: str | Path, images: str | Path, progress: Progress = None, skipped: list[str] | None = None
) -> int:
    """Append the images under ``images`` that the gallery lacks to every complete version (files
    that do not decode are left out and listed in ``skipped``)."""
    gallery = Gallery.open(path)
    if any(v["status"] != "ready" for v in gallery.versions):
        raise ConfigError(
            "a version is half built; finish it (run its create or upgrade again) before adding"
        )
    known = set(gallery.images)
    listed = [f for f in list_images(images) if str(f.resolve()) not in known]
    fresh = readable_images(listed, ModelPack.load(gallery.versions[0]["run"]).input_shape, skipped)
    if not fresh:
        return 0
    first_new_shard = len(gallery.images) // gallery.shard_size()
    gallery.images += fresh
    for version in gallery.versions:
        for index in range(first_new_shard, gallery.shard_count()):
            gallery.shard_path(version, index).unlink(missing_ok=True)  # rewritten whole below
        version["status"] = "building"
    gallery.save()
    for version in gallery.versions:  # new images are embedded by each version's own model
        build(gallery, version, ModelPack.load(version["run"]), progress, route="embed")
    return len(fresh)


def repair(path: str | Path, progress: Progress = None) -> dict[str, int]:
    """Rewrite every missing or corrupt shard of every version; the shards written per version."""
    gallery = Gallery.open(path)
    return {v["name"]: build(gallery, v, ModelPack.load(v["run"]), progress) for v in gallery.versions}


def rollback(path: str | Path) -> dict:
    """Activate the version before the active one; refused at the first."""
    gallery = Gallery.open(path)
    names = [v["name"] for v in gallery.versions]
    position = names.index(gallery.manifest["active"])
    if position == 0:
        raise ConfigError(
            f"{names[0]} is the first version of {gallery.path}; there is nothing to roll back to"
        )
    gallery.manifest["active"] = names[position - 1]
    gallery.save()
    return gallery.active


def status(path: str | Path) -> list[dict]:
    """Per version: model, route, images by how they were made, broken shards, active or not."""
    gallery = Gallery.open(path)
    rows = []
    for version in gallery.versions:
        broken = [i for i in range(gallery.shard_count()) if not gallery.shard_ok(version, i)]
        whole = [i for i in range(gallery.shard_count()) if i not in broken]
        how = torch.cat([gallery.read_shard(version, i)["how"] for i in whole] or [torch.empty(0)])
        rows.append(
            {
                **{k: version[k] for k in ("name", "model", "route", "parent", "dim", "status", "created")},
                "active": version["name"] == gallery.manifest["active"],
                "images": len(gallery.images),
                "embedded": int((how == HOW["embedded"]).sum()),
                "transformed": int((how == HOW["transformed"]).sum()),
                "broken_shards": broken,
            }
        )
    return rows


def search(path: str | Path, image: str | Path | bytes, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` nearest gallery images to ``image`` (a file, or an upload's bytes) in the active
    version's space only."""
    gallery = Gallery.open(path)
    version = gallery.active
    if version["status"] != "ready":
        raise ConfigError(f"{version['name']} is half built; finish it before searching")
    pack = ModelPack.load(version["run"])
    check_pack(pack, version)
    channels, size, _ = pack.input_shape
    name = "the uploaded query" if isinstance(image, bytes) else None  # None: the path
    query = pack.embed(version["model"], images_as_tensor([read_image(image, size, channels, name)]))
    values, rows = search_index(gallery.index(version), query, k)
    return [(gallery.images[i], float(d)) for i, d in zip(rows[0].tolist(), values[0].tolist())]
