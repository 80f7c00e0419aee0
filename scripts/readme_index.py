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


def sync_section(start: str, end: str, body: str, check: bool, what: str, command: str) -> int:
    """Put ``body`` between the ``start`` and ``end`` markers of README.md (or, with ``check``, exit 1
    when it is not already there). Shared by every script that writes part of the README."""
    text = README.read_text(encoding="utf-8")
    head, found_start, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found_start or not found_end:
        raise SystemExit(f"README.md needs the markers {start} and {end} around {what}")
    updated = f"{head}{start}\n{body}\n{end}{tail}"
    if check:
        if updated != text:
            print(f"README.md's {what} is out of date: run {command}", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    return sync_section(
        START, END, readme_index(), "--check" in argv, "technique index", "python scripts/readme_index.py"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
