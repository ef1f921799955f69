#!/usr/bin/env python3
"""Append one measured row to a section of bench/RESULTS.md.

usage: append_row.py SECTION_HEADING HEADER_CELLS ROW_CELLS
  SECTION_HEADING  the '## ...' heading text without the hashes, e.g. "Accuracy anchor: ..."
  HEADER_CELLS     '|'-separated column names, used when the section has no table yet
  ROW_CELLS        '|'-separated values of the new row
The row goes after the section's last table line; the rest of the file is kept as it was.
"""
import pathlib
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    heading, header, row = sys.argv[1:]
    path = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
    lines = path.read_text().splitlines()
    try:
        start = lines.index("## " + heading)
    except ValueError:
        lines += ["", "## " + heading]
        start = len(lines) - 1
    end = start + 1
    while end < len(lines) and not lines[end].startswith("## "):
        end += 1
    table = [i for i in range(start + 1, end) if lines[i].startswith("|")]
    cells = lambda text: "| " + " | ".join(c.strip() for c in text.split("|")) + " |"
    if table:
        lines.insert(table[-1] + 1, cells(row))
    else:
        n = len(header.split("|"))
        block = ["", cells(header), "|" + "---|" * n, cells(row)]
        insert_at = end
        while insert_at > start + 1 and lines[insert_at - 1] == "":
            insert_at -= 1
        lines[insert_at:insert_at] = block + ([""] if end < len(lines) else [])
    path.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
