"""Other teams' bytes of a shared config file, kept exactly: obsgen's change spliced into the file's own text.

ruamel.yaml's round trip keeps comments, key order and quoting, but not every byte: it drops a UTF-8 BOM,
a leading `---` and a final `...`, writes a CRLF file with LF, re-flows a flow sequence written over
several lines or with spaces inside its brackets, joins a plain scalar continued on the next line, writes
`~` as nothing, drops trailing spaces and extra spaces after a colon, and uses one indentation for every
list. So obsgen does not write ruamel's output as it is. It renders the config twice -- as read (`base`)
and with obsgen's parts merged in (`merged`) -- and the difference between the two renderings is exactly
obsgen's change. That difference is applied to the file's own text, a three-way merge with `base` as the
common ancestor: every line ruamel would render differently but obsgen does not change stays as the file
has it, byte for byte.

What cannot be kept: a run of the file's lines that ruamel renders differently *and* that touches
obsgen's change (a multi-line flow sequence right next to obsgen's route, say) is written as ruamel
renders it; `merge` returns those lines (`Kept.rewritten`) so the caller can name them. Lines obsgen
adds use the file's line ending.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

BOM = "\ufeff"


@dataclass
class Kept:
    content: bytes
    rewritten: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, text) of the file's lines


def newline_of(text: str) -> str:
    """The file's line ending: CRLF when at least half of its lines end so, else LF."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def _marker(line: str) -> bool:
    """A YAML document marker or directive (`---`, `...`, `%YAML 1.2`): a line ruamel drops."""
    return line.startswith("%") or line.rstrip() in ("---", "...") or line.startswith(("--- ", "... "))


def _units(base: list[str], keys: list[str]) -> list[tuple[bool, int, int, int, int]]:
    """The alignment of ruamel's rendering with the file as units (same, b1, b2, f1, f2): one per line both
    have alike, one per line ruamel writes differently (`~` -> ``, spacing), one per run of lines that do
    not pair up (kept or replaced whole), and the file's document markers on their own."""
    units: list[tuple[bool, int, int, int, int]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base, keys, autojunk=False).get_opcodes():
        if tag == "equal":
            units += [(True, i1 + k, i1 + k + 1, j1 + k, j1 + k + 1) for k in range(i2 - i1)]
            continue
        lead = next((k for k in range(j2 - j1) if not _marker(keys[j1 + k])), j2 - j1)
        trail = next((k for k in range(j2 - j1 - lead) if not _marker(keys[j2 - 1 - k])), j2 - j1 - lead)
        if lead:
            units.append((False, i1, i1, j1, j1 + lead))
        f1, f2 = j1 + lead, j2 - trail
        if i2 - i1 == f2 - f1:
            units += [(False, i1 + k, i1 + k + 1, f1 + k, f1 + k + 1) for k in range(i2 - i1)]
        elif i2 > i1 or f2 > f1:
            units.append((False, i1, i2, f1, f2))
        if trail:
            units.append((False, i2, i2, f2, j2))
    return units


def _pairs(x: list[str], y: list[str]) -> list[tuple[int, int]]:
    return [(a + k, b + k) for a, b, n in difflib.SequenceMatcher(None, x, y, autojunk=False).get_matching_blocks()
            for k in range(n)]


def _opcodes(pairs: list[tuple[int, int]], nb: int, nc: int) -> list[tuple[str, int, int, int, int]]:
    """difflib-style opcodes from matched line pairs (increasing on both sides)."""
    ops: list[tuple[str, int, int, int, int]] = []
    pb = pc = 0
    for b, c in [*pairs, (nb, nc)]:
        if b > pb or c > pc:
            ops.append(("replace" if b > pb and c > pc else "delete" if b > pb else "insert", pb, b, pc, c))
        if b < nb:
            if ops and ops[-1][0] == "equal" and ops[-1][2] == b:
                ops[-1] = ("equal", ops[-1][1], b + 1, ops[-1][3], c + 1)
            else:
                ops.append(("equal", b, b + 1, c, c + 1))
        pb, pc = b + 1, c + 1
    return ops


def merge(original: str, base: str, merged: str, foreign: str | None = None) -> Kept:
    """`original` (the file as read) with the change from `base` to `merged` (ruamel's renderings of the
    config as read and with obsgen's parts in) applied to its own text; see the module docstring.

    `foreign`, ruamel's rendering of the config without any part of obsgen's, anchors the change: base
    to foreign only removes obsgen's old lines, foreign to merged only adds its new ones, so a moved
    route never makes other teams' lines look removed and added again. Lines of base that foreign lacks
    are obsgen's: ruamel may re-format them freely."""
    newline = newline_of(original)
    ours = original.splitlines(keepends=True)
    keys = [line.rstrip("\r\n") for line in ours]
    if keys and keys[0].startswith(BOM):
        keys[0] = keys[0][len(BOM):]
    b_lines, c_lines = base.splitlines(), merged.splitlines()
    if foreign is None:
        pairs, obsgens = _pairs(b_lines, c_lines), set()
    else:
        f_lines = foreign.splitlines()
        to_foreign = _pairs(b_lines, f_lines)
        onward = dict(_pairs(f_lines, c_lines))
        pairs = [(b, onward[f]) for b, f in to_foreign if f in onward]
        obsgens = set(range(len(b_lines))) - {b for b, _ in to_foreign}
    units = _units(b_lines, keys)
    done: set[int] = set()
    out: list[str] = []
    rewritten: list[tuple[int, str]] = []

    def fresh(lines: list[str]) -> None:
        """Lines from ruamel's rendering, after a file line that had no line ending (the file's last)."""
        if lines and out and not out[-1].endswith("\n"):
            out[-1] += newline
        out.extend(line + newline for line in lines)

    def cut(index: int) -> None:
        """A unit of the file's own lines that obsgen's change cuts into: they are replaced by ruamel's
        rendering, and named, unless they are obsgen's own or read exactly as ruamel writes them."""
        if index in done:
            return
        done.add(index)
        same, b1, b2, f1, f2 = units[index]
        if not same and not (b1 < b2 and set(range(b1, b2)) <= obsgens):
            rewritten.extend((n + 1, keys[n]) for n in range(f1, f2))

    def translate(lo: int, hi: int) -> None:
        """Base lines [lo, hi), which obsgen's change leaves alone, as the file has them."""
        for index, (same, b1, b2, f1, f2) in enumerate(units):
            if index in done:
                continue
            if b1 == b2:  # lines only the file has (`---`, `...`): kept where they stand
                if lo <= b1 < hi:
                    done.add(index)
                    out.extend(ours[f1:f2])
            elif lo <= b1 and b2 <= hi:
                done.add(index)
                out.extend(ours[f1:f2])
            elif b1 < hi and lo < b2:  # partly changed by obsgen: ruamel's rendering of the unchanged part
                cut(index)
                fresh(b_lines[max(b1, lo):min(b2, hi)])

    for tag, i1, i2, j1, j2 in _opcodes(pairs, len(b_lines), len(c_lines)):
        if tag == "equal":
            translate(i1, i2)
            continue
        for index, (same, b1, b2, f1, f2) in enumerate(units):
            if index not in done and (b1 < i2 and i1 < b2 or b1 == b2 and i1 < b1 < i2):
                cut(index)
        fresh(c_lines[j1:j2])
    for index, (_, b1, b2, f1, f2) in enumerate(units):  # the file's own last lines (a final `...`)
        if index not in done and b1 == b2 == len(b_lines):
            out.extend(ours[f1:f2])
    return Kept("".join(out).encode("utf-8", errors="surrogateescape"), sorted(rewritten))


def keep(original: bytes, base: str, merged: str, foreign: str | None = None) -> Kept:
    """The file to write: `merge` of its own text, if that reads exactly as ruamel's `merged` rendering
    does (same data); else `merged` itself, every line of the file it changes named as rewritten. The
    check makes the splice safe whatever the file looks like (a list indented unlike the others, say)."""
    import yaml

    text = original.decode("utf-8", errors="surrogateescape")  # bytes that are not UTF-8 come back as they were
    kept = merge(text, base, merged, foreign)
    try:
        same = yaml.safe_load(kept.content.decode("utf-8", errors="replace").lstrip(BOM)) == yaml.safe_load(merged)
    except yaml.YAMLError:
        same = False
    if same:
        return kept
    after = set(merged.splitlines(keepends=True))
    lines = text.splitlines(keepends=True)
    lost = [(n + 1, line.rstrip("\r\n")) for n, line in enumerate(lines) if line not in after]
    return Kept(merged.encode("utf-8"), lost or [(1, lines[0].rstrip("\r\n") if lines else "")])
