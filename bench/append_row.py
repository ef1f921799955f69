#!/usr/bin/env python3
"""Append one measured row to a section of bench/RESULTS.md, or replace a section's text.

usage: append_row.py SECTION_HEADING HEADER_CELLS ROW_CELLS
       append_row.py --replace-section SECTION_HEADING FILE
  SECTION_HEADING  the '## ...' heading text without the hashes, e.g. "Accuracy anchor: ..."
  HEADER_CELLS     '|'-separated column names, used when the section has no table yet
  ROW_CELLS        '|'-separated values of the new row
  FILE             the section's new text (a table that each run replaces, say)
A row goes after the section's last table line; a missing section is added at the end of the file;
the rest of the file is kept as it was.
"""
import pathlib
import sys


def section(lines, heading):
    """(start, end): the heading's line and the line after the section, adding the section if missing."""
    try:
        start = lines.index("## " + heading)
    except ValueError:
        lines += ["", "## " + heading]
        start = len(lines) - 1
    end = start + 1
    while end < len(lines) and not lines[end].startswith("## "):
        end += 1
    return start, end


def append_row(lines, heading, header, row):
    start, end = section(lines, heading)
    table = [i for i in range(start + 1, end) if lines[i].startswith("|")]
    cells = lambda text: "| " + " | ".join(c.strip() for c in text.split("|")) + " |"
    if table:
        lines.insert(table[-1] + 1, cells(row))
        return
    n = len(header.split("|"))
    block = ["", cells(header), "|" + "---|" * n, cells(row)]
    insert_at = end
    while insert_at > start + 1 and lines[insert_at - 1] == "":
        insert_at -= 1
    lines[insert_at:insert_at] = block + ([""] if end < len(lines) else [])


def replace_section(lines, heading, text):
    start, end = section(lines, heading)
    lines[start + 1:end] = ["", *text.rstrip("\n").splitlines(), *([""] if end < len(lines) else [])]


def main() -> int:
    args = sys.argv[1:]
    path = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
    if len(args) == 3 and args[0] == "--replace-section":
        try:
            text = pathlib.Path(args[2]).read_text()
        except OSError as e:
            print(f"append_row.py: cannot read {args[2]}: {e.strerror}", file=sys.stderr)
            return 2
        lines = path.read_text().splitlines()
        replace_section(lines, args[1], text)
    elif len(args) == 3 and not args[0].startswith("--"):
        lines = path.read_text().splitlines()
        append_row(lines, *args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    path.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
