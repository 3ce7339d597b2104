"""The data inventory of docs/privacy.md, parsed: columns (`table.column`) and file
patterns (`file pattern`, relative to the data dir)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"


@dataclass(frozen=True)
class Inventory:
    columns: frozenset[str]
    files: tuple[str, ...]

    def file_kind(self, relative: str) -> str | None:
        """The inventory pattern a data-dir file matches, or None."""
        for pattern in self.files:
            if fnmatch.fnmatchcase(relative, pattern):
                return pattern
        return None


def inventory(doc: Path = DOC) -> Inventory:
    text = doc.read_text()
    table = text.split("<!-- inventory:start -->", 1)[1].split("<!-- inventory:end -->", 1)[0]
    columns: set[str] = set()
    files: list[str] = []
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith(("| where", "|---")):
            continue
        where = line.split("|")[1].strip()
        names = re.findall(r"`([^`]+)`", where)
        if where.startswith("file "):
            files.extend(names)
        else:
            columns.update(names)
    return Inventory(frozenset(columns), tuple(files))
