"""YAML written directly: byte for byte what PyYAML's CSafeDumper writes with obsgen's options.

Why: PyYAML's emitter is C, but its representer and resolver are Python and walk every node; on a large
build that was half of the time. The documents obsgen writes are plain data (dicts with str keys, lists,
str, int, float, bool, None), whose layout is fixed: sorted keys, two-space indentation, block sequences
inside mappings at the key's indentation, empty collections as `{}`/`[]`, strings with a newline in
literal style. What is not fixed is how one string is written (plain, quoted, escaped), so PyYAML is asked
about every string this module cannot prove plain, single-quoted or a simple literal — once per distinct
string, cached — and about whole documents holding anything else (other types, non-str keys, keys libyaml
would write as `? key`, strings long enough for libyaml to fold). The options, to match PyYAML exactly:
sort_keys=True, default_flow_style=False, width=1 << 16, allow_unicode=True, no aliases.
"""
from __future__ import annotations

import re
from typing import Any

MAX_SCALAR = 4096  # longer strings go to PyYAML with their document: near its width (65536) libyaml folds
MAX_KEY_BYTES = 128  # libyaml writes a longer key (UTF-8 bytes) as a complex key, `? key` then `: value`
CACHE_LIMIT = 200_000  # distinct strings remembered; past it the caches start over (memory stays bounded)

# Characters libyaml writes as they are with allow_unicode: its IS_PRINTABLE less tab, U+FEFF and the line
# breaks U+2028/U+2029 (4-byte UTF-8 is not printable to libyaml: it escapes emoji).
_CHARS = "\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
_SAFE = re.compile(f"[{_CHARS}]*")
_SAFE_LINES = re.compile(f"[\n{_CHARS}]*")
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_STR_TAG = "tag:yaml.org,2002:str"


class Fallback(Exception):
    """Something this writer does not prove it writes as PyYAML does: PyYAML writes the whole document."""


def dump(obj: Any, *, documents: bool = False) -> str:
    """The YAML text of `obj` (a list of documents when `documents`), as PyYAML would write it."""
    try:
        return _documents(obj) if documents else _root(obj)
    except Fallback:
        return pyyaml_dump(obj, documents=documents)


def _root(obj: Any) -> str:
    out: list[str] = []
    kind = type(obj)
    if kind is dict and obj:
        _mapping(obj, out, "", "")
    elif kind is list and obj:
        _sequence(obj, out, "", "")
    elif (kind is dict or kind is list) and not obj:
        out.append("{}\n" if kind is dict else "[]\n")
    else:
        raise Fallback  # a top-level scalar may end "open" (`...`): rare, left to PyYAML
    return "".join(out)


def _documents(docs: Any) -> str:
    if type(docs) is not list:
        raise Fallback
    out: list[str] = []
    for doc in docs:
        kind = type(doc)
        if (kind is dict or kind is list) and doc:
            out.append("---\n")
            (_mapping if kind is dict else _sequence)(doc, out, "", "")
        elif kind is dict or kind is list:
            out.append("--- {}\n" if kind is dict else "--- []\n")
        else:
            raise Fallback
    return "".join(out)


def _mapping(mapping: dict, out: list[str], indent: str, lead: str) -> None:
    """Block mapping whose keys sit at column len(indent); the first key is preceded by `lead` (empty right
    after a sequence's `- `, else the indentation)."""
    inner = indent + "  "
    try:
        keys = sorted(mapping)
    except TypeError:
        raise Fallback from None
    for key in keys:
        if key.__class__ is not str:
            raise Fallback
        key_text = _keys.get(key) or _key(key)
        value = mapping[key]
        kind = value.__class__
        if kind is str:
            text = _scalars.get(value) or _scalar(value)
            if text.__class__ is str:
                out.append(f"{lead}{key_text} {text}\n")
            else:
                out.append(f"{lead}{key_text} {_literal(text, inner)}")
        elif kind is dict:
            if value:
                out.append(f"{lead}{key_text}\n")
                _mapping(value, out, inner, inner)
            else:
                out.append(f"{lead}{key_text} {{}}\n")
        elif kind is list:
            if value:
                out.append(f"{lead}{key_text}\n")
                _sequence(value, out, indent, indent)  # libyaml's indentless sequence in a mapping
            else:
                out.append(f"{lead}{key_text} []\n")
        else:
            out.append(f"{lead}{key_text} {_other(value)}\n")
        lead = indent


def _sequence(items: list, out: list[str], indent: str, lead: str) -> None:
    """Block sequence whose dashes sit at column len(indent); `lead` as in `_mapping`."""
    inner = indent + "  "
    for item in items:
        kind = item.__class__
        if kind is str:
            text = _scalars.get(item) or _scalar(item)
            if text.__class__ is str:
                out.append(f"{lead}- {text}\n")
            else:
                out.append(f"{lead}- {_literal(text, inner)}")
        elif kind is dict:
            if item:
                out.append(f"{lead}- ")
                _mapping(item, out, inner, "")
            else:
                out.append(f"{lead}- {{}}\n")
        elif kind is list:
            if item:
                out.append(f"{lead}- ")
                _sequence(item, out, inner, "")
            else:
                out.append(f"{lead}- []\n")
        else:
            out.append(f"{lead}- {_other(item)}\n")
        lead = indent


def _other(value: Any) -> str:
    """int, float, bool and None as PyYAML's SafeRepresenter writes them; anything else goes to PyYAML."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = float.__repr__(value).lower()
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    raise Fallback


def _literal(parts: tuple[str, tuple[str, ...]], indent: str) -> str:
    """A literal block scalar: its header (`|`, `|-`, `|2-`...), then each line at `indent`, empty lines
    empty (libyaml writes no trailing spaces)."""
    header, lines = parts
    return header + "\n" + "".join(indent + line + "\n" if line else "\n" for line in lines)


# --- one string: plain, single-quoted, literal, or whatever PyYAML says ---------------------------------

_scalars: dict[str, Any] = {}  # value -> its text, or (literal header, lines)
_keys: dict[str, str] = {}  # key -> its text followed by ":"


def _scalar(value: str) -> Any:
    text: Any = _simple_literal(value) if "\n" in value else None  # a literal is never folded: any length
    if text is None:
        if len(value) > MAX_SCALAR:
            raise Fallback
        text = _plain_or_quoted(value) or _ask_pyyaml(value)
    return _remember(_scalars, value, text)


def _key(key: str) -> str:
    """A key written plain or single-quoted; any other key (escapes, line breaks, over 128 bytes: libyaml
    may make it a complex `? key`) sends its document to PyYAML."""
    text = _plain_or_quoted(key) if len(key.encode()) <= MAX_KEY_BYTES else None
    if text is None:
        raise Fallback
    return _remember(_keys, key, text + ":")


def _remember(cache: dict[str, Any], value: str, text: Any) -> Any:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[value] = text
    return text


def _plain_or_quoted(value: str) -> str | None:
    """`value` plain if libyaml writes it plain in block context, single-quoted if it must be quoted but
    has only characters libyaml writes as they are; None when PyYAML must say (tabs, control characters,
    emoji: double quotes and escapes)."""
    if not value or not _SAFE.fullmatch(value):
        return None
    if _plain(value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _plain(value: str) -> bool:
    """libyaml's analysis of a non-empty one-line scalar of safe characters (block context), plus the
    resolver: plain only if it would read back as the same string."""
    first = value[0]
    if first in _FIRST_INDICATORS or first == " " or value[-1] == " " or value.endswith(":"):
        return False
    if first in "-?:" and (len(value) == 1 or value[1] == " "):
        return False
    if value.startswith(("---", "...")) or ": " in value or " #" in value:
        return False
    return _resolves_to_str(value)


def _resolves_to_str(value: str) -> bool:
    """PyYAML's implicit resolvers (bool, int, float, null, timestamp, merge, value) leave `value` a str."""
    global _RESOLVE
    if _RESOLVE is None:
        import yaml

        resolve, node = yaml.resolver.Resolver().resolve, yaml.ScalarNode
        _RESOLVE = lambda text: resolve(node, text, (True, False))  # noqa: E731
    return _RESOLVE(value) == _STR_TAG


_RESOLVE: Any = None


def _simple_literal(value: str) -> tuple[str, tuple[str, ...]] | None:
    """The literal block of a multi-line string of safe characters, when libyaml allows it (no space before
    a line break, no trailing space) and no indentation indicator or keep chomping (`|2`, `|+`, which end
    the document open) is involved; None otherwise."""
    if not _SAFE_LINES.fullmatch(value) or " \n" in value or value[-1] == " " or value[0] in " \n":
        return None
    if value.endswith("\n\n"):
        return None
    if value.endswith("\n"):
        return "|", tuple(value[:-1].split("\n"))
    return "|-", tuple(value.split("\n"))


def _ask_pyyaml(value: str) -> Any:
    """How PyYAML writes `value` as a mapping value: one line of text, or (literal header, lines); a
    string PyYAML writes otherwise (folded across lines, a document left open) sends its document to PyYAML."""
    text = pyyaml_dump({"k": value})
    if not text.startswith("k: ") or not text.endswith("\n") or _OTHER_BREAKS.search(text):
        raise Fallback  # a break libyaml writes as it is, then indents: the text depends on where it stands
    first, _, rest = text[3:].partition("\n")
    if not rest:
        return first
    if not first.startswith("|"):
        raise Fallback
    lines = rest[:-1].split("\n")
    if any(line and not line.startswith("  ") for line in lines):
        raise Fallback
    return first, tuple(line[2:] for line in lines)


def pyyaml_dump(obj: Any, *, documents: bool = False) -> str:
    """PyYAML's own writing with obsgen's options: the reference this module reproduces."""
    import yaml

    opts = dict(Dumper=_dumper(), sort_keys=True, default_flow_style=False, width=1 << 16, allow_unicode=True)
    if documents:
        return yaml.dump_all(obj, explicit_start=True, **opts)
    return yaml.dump(obj, **opts)


_DUMPER: Any = None


def _dumper() -> Any:
    global _DUMPER
    if _DUMPER is None:
        import yaml

        class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
            def ignore_aliases(self, data: Any) -> bool:  # never emit &anchors
                return True

        def _str(dumper: Any, value: str) -> Any:
            return dumper.represent_scalar(_STR_TAG, value, style="|" if "\n" in value else None)

        _Dumper.add_representer(str, _str)
        _DUMPER = _Dumper
    return _DUMPER
