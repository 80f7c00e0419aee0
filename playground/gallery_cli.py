"""``playground gallery``: a user's image gallery that knows its models (:mod:`playground.fct.versions`).

create, add, upgrade (transform with FCT's h, or re-embed), backfill (re-embed part of a transformed
version, FastFill's order or random), status, rollback, repair and search."""

from __future__ import annotations

import sys

from playground.core.progress import TqdmProgress


def add_gallery_parser(commands) -> None:
    gallery = commands.add_parser(
        "gallery",
        help="FCT on your own images: a versioned gallery (create, add, upgrade, backfill, status, "
        "rollback, search)",
        description="Every version is one embedding space; a search uses the active version only. "
        "The models come from an FCT run folder (`playground run recipes/fct_fashion.toml`).",
    )
    actions = gallery.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="embed a folder of images with the run's old model (v1)")
    create.add_argument("gallery")
    create.add_argument("--run", required=True, help="an FCT run folder with its saved models")
    create.add_argument("--images", required=True, help="a folder of images (any depth)")
    create.add_argument("--shard-size", type=int, default=1024)
    create.add_argument(
        "--index",
        choices=("flat", "hnsw"),
        default="flat",
        help="each version's FAISS index: flat (exact) or hnsw (approximate, for millions of images)",
    )
    add = actions.add_parser(
        "add", help="append the images of a folder that the gallery lacks, to every version"
    )
    add.add_argument("gallery")
    add.add_argument("--images", required=True)
    upgrade = actions.add_parser("upgrade", help="the next version, in the new model's space")
    upgrade.add_argument("gallery")
    upgrade.add_argument("--run", required=True, help="the FCT run whose new model and h to use")
    upgrade.add_argument(
        "--route",
        choices=("transform", "embed"),
        default="transform",
        help="transform the stored vectors with h (default, no image is read) or re-embed every image",
    )
    backfill = actions.add_parser(
        "backfill",
        help="re-embed part of an h-transformed version, most uncertain first (FastFill), or at random",
    )
    backfill.add_argument("gallery")
    backfill.add_argument(
        "--fraction", type=float, required=True, help="share of the gallery re-embedded when done (0 to 1)"
    )
    backfill.add_argument("--order", choices=("fastfill", "random"), default="fastfill")
    backfill.add_argument("--seed", type=int, default=0, help="for --order random")
    for name, text in (
        ("status", "versions, how their vectors were made, broken shards"),
        ("rollback", "activate the version before the active one"),
        ("repair", "rewrite missing or corrupt shards"),
    ):
        actions.add_parser(name, help=text).add_argument("gallery")
    search = actions.add_parser("search", help="the nearest gallery images to a query image")
    search.add_argument("gallery")
    search.add_argument("image")
    search.add_argument("-k", type=int, default=5)
    gallery.set_defaults(handler=cmd_gallery)


def cmd_gallery(args) -> int:
    from playground.fct import versions
    from playground.fct.gallery_backfill import backfill

    progress, skipped = TqdmProgress(), []
    if args.action == "create":
        made = versions.create(
            args.gallery, args.run, args.images, args.shard_size, progress, skipped, args.index
        )
        print(f"{args.gallery}: v1 holds {len(made.images)} images")
    elif args.action == "add":
        print(f"added {versions.add(args.gallery, args.images, progress, skipped)} images to every version")
    elif args.action == "upgrade":
        version = versions.upgrade(args.gallery, args.run, args.route, progress)
        print(f"{version['name']} ({version['route']} from {version['parent']}) is active")
    elif args.action == "backfill":
        done = backfill(args.gallery, args.fraction, args.order, args.seed, progress)
        print(f"{done['version']}: {done['embedded']} re-embedded, {done['transformed']} transformed by h")
    elif args.action == "rollback":
        print(f"{versions.rollback(args.gallery)['name']} is active")
    elif args.action == "repair":
        for name, count in versions.repair(args.gallery, progress).items():
            print(f"{name}: {count} shards rewritten")
    elif args.action == "status":
        print_status(versions.status(args.gallery))
    elif args.action == "search":
        for rank, (path, distance) in enumerate(versions.search(args.gallery, args.image, args.k), 1):
            print(f"{rank:>3}  {distance:8.4f}  {path}")
    for file in skipped[:20]:
        print(f"skipped (not a readable image): {file}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"... and {len(skipped) - 20} more unreadable files", file=sys.stderr)
    return 0


def print_status(rows: list[dict]) -> None:
    print(
        f"{'':2}{'version':<8}{'model':<6}{'route':<10}{'from':<6}{'dim':>5}{'images':>8}{'embedded':>10}"
        f"{'transformed':>12}  status"
    )
    for row in rows:
        broken = f", broken shards {row['broken_shards']}" if row["broken_shards"] else ""
        print(
            f"{'*' if row['active'] else '':2}{row['name']:<8}{row['model']:<6}{row['route']:<10}"
            f"{row['parent'] or '-':<6}{row['dim']:>5}{row['images']:>8}{row['embedded']:>10}"
            f"{row['transformed']:>12}  {row['status']}{broken}"
        )
