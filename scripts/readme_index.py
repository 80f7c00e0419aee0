"""Write the README's technique index from the one list in ``playground.core.registry``.

    .venv/bin/python scripts/readme_index.py          # rewrite the index in README.md
    .venv/bin/python scripts/readme_index.py --check  # exit 1 if README.md is out of date

The index sits between the ``<!-- techniques -->`` and ``<!-- /techniques -->`` markers;
``tests/core/test_registry.py`` runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playground.core.registry import readme_index

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- techniques -->", "<!-- /techniques -->"


def with_index(text: str) -> str:
    """``text`` with the part between the markers replaced by the generated index."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md needs the markers {START} and {END} around the technique index")
    return f"{head}{START}\n{readme_index()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    updated = with_index(text)
    if "--check" in argv:
        if updated != text:
            print(
                "README.md's technique index is out of date: run python scripts/readme_index.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
