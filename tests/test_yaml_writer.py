"""`render.to_yaml` writes YAML itself (obsgen/compile/yaml_writer.py); its bytes must stay those of the PyYAML path
it replaced. `reference_to_yaml` below is that path, kept here (not in the package) as the oracle: every
generated YAML document of three specs, and a table of values chosen to hit each of PyYAML's decisions
(plain or quoted, escapes, literal blocks and their indicators, complex keys, number formats), are written
by both and compared byte for byte.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REFERENCE_SPEC, ROOT

import obsgen.compile.openslo as openslo
from obsgen.compile import render, yaml_writer
from obsgen.compile import compile_all
from obsgen.spec import load_spec

SPECS = [REFERENCE_SPEC, ROOT / "tests/specs/large.jsonnet", ROOT / "tests/specs/minimal.yaml"]


def reference_to_yaml(obj: Any, spec_name: str | None = None, *, documents: bool = False) -> bytes:
    """`render.to_yaml` as it was before the direct writer: PyYAML's CSafeDumper with obsgen's options."""
    class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    opts = dict(Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=1 << 16, allow_unicode=True)
    if documents:
        body = yaml.dump_all(obj, explicit_start=True, **opts)
    else:
        body = yaml.dump(obj, **opts)
    return ((render.header() if spec_name else "") + body).encode()


def _same(obj: Any, *, documents: bool = False) -> None:
    assert render.to_yaml(obj, documents=documents) == reference_to_yaml(obj, documents=documents), repr(obj)


# --- 1. everything a build writes ----------------------------------------------------------------------

def _build(spec: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], list[Any]]:
    """Compile `spec`; returns the (obj, spec_name, documents) each to_yaml call got, compared as they come
    (before anything could mutate them), and the objects handed whole to PyYAML."""
    calls: list[Any] = []
    whole: list[Any] = []
    real_to_yaml, real_dump = render.to_yaml, yaml_writer.pyyaml_dump

    def recording(obj: Any, spec_name: str | None = None, *, documents: bool = False) -> bytes:
        out = real_to_yaml(obj, spec_name, documents=documents)
        assert out == reference_to_yaml(obj, spec_name, documents=documents), "to_yaml differs from PyYAML"
        calls.append((obj, spec_name, documents))
        return out

    def counting(obj: Any, *, documents: bool = False) -> str:
        if not (type(obj) is dict and list(obj) == ["k"]):  # not a one-string question
            whole.append(obj)
        return real_dump(obj, documents=documents)

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(render, "to_yaml", recording)
    monkeypatch.setattr(openslo, "to_yaml", recording)
    monkeypatch.setattr(yaml_writer, "pyyaml_dump", counting)
    model = load_spec(str(spec.relative_to(ROOT)))
    artifacts = compile_all(model, model.environments)
    monkeypatch.undo()
    return artifacts, calls, whole


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: p.name)
def build(request: pytest.FixtureRequest):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _build(request.param, monkeypatch)


def test_every_to_yaml_call_of_a_build_gives_pyyamls_bytes_without_handing_it_whole_documents(build) -> None:
    _, calls, whole = build
    assert calls, "the build wrote YAML"
    assert whole == [], "obsgen's own documents are written by the direct writer, not handed to PyYAML"


def test_every_generated_yaml_file_parsed_back_is_written_as_pyyaml_writes_it(build) -> None:
    artifacts, _, _ = build
    files = [a for a in artifacts if a.path.endswith((".yaml", ".yml"))]
    assert files
    for artifact in files:
        text = artifact.content.decode()
        body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
        documents = body.startswith("---")
        data = list(yaml.safe_load_all(text)) if documents else yaml.safe_load(text)
        assert render.to_yaml(data, documents=documents) == reference_to_yaml(data, documents=documents), \
            artifact.path


# --- 2. values chosen to hit each of PyYAML's decisions ------------------------------------------------

STRINGS = [
    # read back as something else unless quoted
    "yes", "no", "on", "off", "Yes", "ON", "y", "n", "true", "False", "null", "Null", "~", "", "1e3", "0x1f",
    "1_000", ".5", "+1", "-1", "0o17", "0b101", "1:20", "190:20:30", ".inf", "-.Inf", ".nan", "<<", "=",
    "2024-01-01", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z", "1.0", "007", "0", "-0",
    # indicators
    "a: b", "a:", "a:b", ":a", ": a", "a #b", "a#b", "#a", "-", "-a", "- a", "--", "---", "--- a", "...", "?",
    "?a", "? a", "&a", "*a", "!a", "%a", "@a", "`a", "|a", ">a", "[a]", "{a}", "a,b", ",a", "a]", "'a'",
    '"a"', "it's", 'say "hi"', "a: 'b'", "{{ $labels.job }}", "sum(rate(x{job=\"a\"}[5m])) > 0.5",
    # spaces, tabs, control and unusual characters
    " a", "a ", " ", "  ", "a  b", "a\tb", "\t", "a\rb", "a\x00b", "a\x07", "a\x1bb", "a\x7fb", "a\x85b",
    "a\u2028b", "a\u2029b", "a\ufeffb", "\xa0a", "é", "naïve café", "≤ 5 s — ok", "日本語", "😀", "a😀b",
    "\ue000", "\ufffd", "\uffff",
    # line breaks: literal blocks, their chomping and indentation indicators, and where literal is refused
    "a\nb", "a\nb\n", "a\nb\n\n", "\n", "\n\n", "a\n", "\na", " a\nb", "  a\n  b\n", "a\n b", "a\n\nb",
    "a \nb", "a\nb ", "a\n\tb", "a\t\nb", "a\n\n", "a\r\nb", "a\n\u2028b", "- a\nb", "# a\nb", "a: b\nc",
    "yes\nno", "line 1\n  line 2\n\nline 4\n", "😀\n",
    # long strings: near and past libyaml's width of 65536 and the writer's own limits
    "x" * 4096, "x" * 4097, "word " * 20000 + "end", "a'b " * 2000, "\t" * 5000, "line\n" * 3000,
    " lead\n" + "y " * 40000, "a" * 70000,
]
KEYS = ["a", "yes", "null", "", "1", "a b", "a: b", "a:", "-", "- a", "#", "?", "'", "x" * 128, "x" * 129,
        "é" * 64, "é" * 65, "a\tb", "a\nb", "a\u2028b", "😀", "2024-01-01", "~", " a", "a "]
OTHERS = [0, 1, -1, 10 ** 30, -(10 ** 40), 2 ** 63, True, False, None, 0.1, 1e-05, 1e20, 1e16, 1.5e300, -0.0,
          0.0, 3.0, 123456789.123, 5e-324, float("inf"), float("-inf"), float("nan"), 1 / 3]


def _contexts(value: Any) -> list[Any]:
    """`value` everywhere it can stand: mapping value, sequence item, nested one and two levels, sequence in
    a mapping (indentless), mapping in a sequence (first and later key), and at the top."""
    return [
        {"k": value}, [value], {"a": {"b": value}}, {"a": [value, value]}, [[value]], [{"b": value, "c": 1}],
        [{"a": 1, "b": value}], {"a": [{"b": [value]}]}, {"z": value, "a": value, "m": [1]}, value,
    ]


@pytest.mark.parametrize("value", STRINGS + OTHERS, ids=lambda v: repr(v)[:40])
def test_a_value_is_written_as_pyyaml_writes_it_wherever_it_stands(value: Any) -> None:
    for obj in _contexts(value):
        _same(obj)
    _same([value, {"k": value}, [value]], documents=True)


@pytest.mark.parametrize("key", KEYS + STRINGS[:40], ids=lambda v: repr(v)[:40])
def test_a_key_is_written_as_pyyaml_writes_it(key: str) -> None:
    for obj in ({key: 1}, {key: {key: [key]}}, [{key: "v", "zz": 1}], [{"0": 1, key: {}}], {key: "a\nb"}):
        _same(obj)


@pytest.mark.parametrize("obj", [
    {}, [], {"a": {}}, {"a": []}, [{}], [[]], [[[]]], {"a": [{}, [], {"b": {}}]}, [{"a": []}, {"b": [[]]}],
    {"b": 1, "a": 2, "B": 3, "_": 4, "é": 5, "10": 6, "9": 7},
    {1: "int key"}, {"a": {2: "x", "b": 1}}, {"a": 1, 2: "b"}, {None: 1}, {True: 1}, {1.5: 1}, {("a", 1): 2}, {"a": (1, 2)},
    (1, 2), "top", 5, None, 1.5, True,
], ids=repr)
def test_containers_and_odd_types_are_written_as_pyyaml_writes_them(obj: Any) -> None:
    _same(obj)


@pytest.mark.parametrize("docs", [[], [{}], [[]], [{"a": 1}, {"b": [1]}], [{"a": "x\n\n"}, {"b": 1}],
                                  ["text", {"a": 1}], [None], [[{"a": 1}], {"b": {"c": "d\ne"}}]], ids=repr)
def test_document_streams_are_written_as_pyyaml_writes_them(docs: list[Any]) -> None:
    _same(docs, documents=True)


def test_errors_are_pyyamls_for_what_it_cannot_represent() -> None:
    class Thing:
        pass

    for obj in ({"a": Thing()}, [Thing()], {Thing(): 1}):
        with pytest.raises(Exception) as mine:
            render.to_yaml(obj)
        with pytest.raises(Exception) as theirs:
            reference_to_yaml(obj)
        assert type(mine.value) is type(theirs.value)


def test_layout_is_block_style_with_indentless_sequences_and_sorted_keys() -> None:
    """The layout by intent, independent of the oracle: what a reader of generated/ sees."""
    obj = {"groups": [{"name": "g", "rules": [{"expr": "up == 0\n", "for": "5m"}], "interval": "1m"}],
           "empty": {}, "none": [], "n": None, "t": True, "x": 1.0e-5, "s": "yes"}
    assert render.to_yaml(obj, "spec.yaml") == (
        "# Code generated by obsgen. DO NOT EDIT.\n"  # naming neither the spec nor the version
        + "empty: {}\n"
        "groups:\n"
        "- interval: 1m\n"
        "  name: g\n"
        "  rules:\n"
        "  - expr: |\n"
        "      up == 0\n"
        "    for: 5m\n"
        "n: null\n"
        "none: []\n"
        "s: 'yes'\n"
        "t: true\n"
        "x: 1.0e-05\n").encode()
    assert render.to_yaml([{"a": 1}, {}], documents=True) == b"---\na: 1\n--- {}\n"


def test_repeated_strings_are_decided_once() -> None:
    """The per-string decision is cached: writing a string again does not ask PyYAML again."""
    value = "needs\ta question"
    asked: list[str] = []
    real = yaml_writer._ask_pyyaml

    def ask(text: str) -> Any:
        asked.append(text)
        return real(text)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(yaml_writer, "_ask_pyyaml", ask)
        monkeypatch.setattr(yaml_writer, "_scalars", {})
        render.to_yaml({"a": value, "b": [value, value]})
        render.to_yaml([value])
    assert asked == [value]
