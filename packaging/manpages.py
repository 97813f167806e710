#!/usr/bin/env python3
"""Make the roff man pages in src/ipmp/man/ from their one source, docs/man/*.md.

The sources use a small Markdown subset, so that they read well as they are
and need no converter beyond this file (no pandoc, no docutils):

    % NAME SECTION "Manual title"   first line: the .TH header
    # HEADING                        a section (.SH)
    ## Heading                       a subsection (.SS)
    `term`                           a line followed by ":   text" lines is a
    :   text                         definition list entry (.TP)
    - item                           a bullet (.IP)
    ```                              a literal block (.nf ... .fi), fenced
    plain lines                      paragraphs (.PP), blank-line separated
    **bold**, `literal`, *italic*    inline fonts (literals are bold, as in man(7))

The version in the page footer is ipmp.__version__, the project's one version.

    python3 packaging/manpages.py           write src/ipmp/man/*.8
    python3 packaging/manpages.py --check   exit 1 if any of them is out of date
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO / "docs" / "man"
OUTPUT = REPO / "src" / "ipmp" / "man"

_INLINE = re.compile(r"\*\*(?P<bold>.+?)\*\*|`(?P<code>[^`]+)`|\*(?P<italic>[^*\s][^*]*?)\*")


def _escape(text: str) -> str:
    """Plain text as roff: backslashes and hyphen-minus (options, paths) made literal."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def _inline(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _INLINE.finditer(text):
        out.append(_escape(text[pos : match.start()]))
        if match["bold"] is not None:
            out.append(f"\\fB{_escape(match['bold'])}\\fR")
        elif match["code"] is not None:
            out.append(f"\\fB{_escape(match['code'])}\\fR")
        else:
            out.append(f"\\fI{_escape(match['italic'])}\\fR")
        pos = match.end()
    out.append(_escape(text[pos:]))
    return _line("".join(out))


def _line(text: str) -> str:
    # A line starting with . or ' would be a roff request.
    return "\\&" + text if text[:1] in (".", "'") else text


def convert(markdown: str, version: str) -> str:
    """The roff page for one Markdown source."""
    lines = markdown.splitlines()
    if not lines or not lines[0].startswith("% "):
        raise ValueError('the first line must be: % NAME SECTION "Manual title"')
    words = shlex.split(lines[0][2:])
    if len(words) != 3:
        raise ValueError('the first line must be: % NAME SECTION "Manual title"')
    name, section, manual = words
    out = [
        f'.\\" From docs/man/{name.lower()}.{section}.md by packaging/manpages.py; edit that',
        f'.TH "{name}" "{section}" "" "ipmp {version}" "{manual}"',
        ".nh",  # no hyphenation: options and paths must stay whole
        ".ad l",
    ]
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(".PP")
            out.extend(_inline(part) for part in paragraph)
            paragraph.clear()

    i = 1
    while i < len(lines):
        line = lines[i].rstrip()
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.startswith("```"):
            flush()
            out.extend([".PP", ".RS 4", ".nf"])
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(_line(_escape(lines[i].rstrip())))
                i += 1
            out.extend([".fi", ".RE"])
        elif line.startswith("## "):
            flush()
            out.append(f'.SS "{line[3:]}"')
        elif line.startswith("# "):
            flush()
            out.append(f'.SH "{line[2:]}"')
        elif line and following.startswith(":   "):
            flush()
            out.extend([".TP", _inline(line)])
            i += 1
            while i < len(lines) and lines[i].startswith((":   ", "    ")) and lines[i].strip():
                out.append(_inline(lines[i][4:].strip()))
                i += 1
            continue
        elif line.startswith("- "):
            flush()
            out.extend([".IP \\(bu 2", _inline(line[2:])])
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                out.append(_inline(lines[i].strip()))
                i += 1
            continue
        elif not line:
            flush()
        else:
            paragraph.append(line.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def pages(version: str) -> dict[str, str]:
    """Every page: its file name (``in.mpathd.8``) and its roff text."""
    return {
        source.name.removesuffix(".md"): convert(source.read_text(encoding="utf-8"), version)
        for source in sorted(SOURCES.glob("*.md"))
    }


def _version() -> str:
    sys.path.insert(0, str(REPO / "src"))
    import ipmp

    return ipmp.__version__


def main(argv: list[str]) -> int:
    made = pages(_version())
    if argv == ["--check"]:
        stale = [
            name
            for name, text in made.items()
            if not (OUTPUT / name).is_file() or (OUTPUT / name).read_text() != text
        ]
        extra = sorted({p.name for p in OUTPUT.glob("*.[1-9]")} - set(made))
        for name in stale:
            print(f"src/ipmp/man/{name} is out of date: run python3 packaging/manpages.py")
        for name in extra:
            print(f"src/ipmp/man/{name} has no source in docs/man/")
        return 1 if stale or extra else 0
    if argv:
        print("usage: python3 packaging/manpages.py [--check]", file=sys.stderr)
        return 2
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, text in made.items():
        (OUTPUT / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
