"""The floors of the figures with a target: the least time (or bytes) the work could take on this machine.

A floor is a lower bound measured in the same run, not a goal: `value ÷ floor` says how much of a figure
is obsgen's own overhead. Each floor leaves out work that must stay (the compile a CI check needs, the
planning of an apply), so no figure can reach it; see bench/README.md, "Floors".

- apply: ceil(requests / IN_FLIGHT) round trips of the Grafana double's latency, plus the interpreter
  start with obsgen's CLI imported (`python -c "import obsgen.cli"`);
- check without a stamp: `python -c "import yaml"` plus serialising the documents of one compile
  (`render.to_yaml` / `render.to_json` of every artifact, timed in-process: `serialisation_time`);
- build: writing the bytes of the build's own output into a fresh directory (`write_time`);
  output size: the bytes outside `tests/` (what is deployed or read: `needed_bytes`);
- verify: promtool alone on the rule test files, one call per file as `obsgen verify` does
  (`promtool_time`).
"""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from measure import Child, median, run_child

IN_FLIGHT = 16  # obsgen's requests in flight (obsgen.deploy.http.READ_WORKERS as shipped)


def apply_floor(requests: int, latency: float, start: float | None, in_flight: int = IN_FLIGHT) -> float | None:
    """Seconds an apply of `requests` requests needs at least: the round trips at `in_flight` at once, each
    `latency` s, after the interpreter has started with obsgen's CLI imported (`start` s)."""
    if start is None or not requests:
        return None
    return math.ceil(requests / in_flight) * latency + start


def serialisation_time(spec: str, runs: int) -> tuple[float | None, int, int]:
    """Median seconds (over `runs`) to serialise, in this process, every document of one compile of `spec`
    (all environments): the `render.to_yaml` / `render.to_json` calls whose bytes became an artifact, replayed
    with their recorded arguments. Also (documents replayed, artifacts of the compile): an artifact not made
    by those two functions (Markdown docs) costs nothing here."""
    from obsgen.compile import render
    from obsgen.generate import compile_spec

    compile_spec(spec)  # imports every target module, so that their bound names can be patched
    calls: list[tuple[Callable[..., bytes], tuple[Any, ...], dict[str, Any], bytes]] = []
    originals = {"to_yaml": render.to_yaml, "to_json": render.to_json}

    def recording(fn: Callable[..., bytes]) -> Callable[..., bytes]:
        def record(*args: Any, **kwargs: Any) -> bytes:
            out = fn(*args, **kwargs)
            calls.append((fn, args, kwargs, out))
            return out
        return record

    patched = [(module, name, original) for module in list(sys.modules.values())
               if getattr(module, "__name__", "").startswith("obsgen")
               for name, original in originals.items() if getattr(module, name, None) is original]
    for module, name, original in patched:
        setattr(module, name, recording(original))
    _clear_caches()  # the targets cache their compiles (lru_cache): the recorded one must serialise everything
    try:
        build = compile_spec(spec)
    finally:
        for module, name, original in patched:
            setattr(module, name, original)
    contents = {a.content for a in build.artifacts}
    kept = [(fn, args, kwargs) for fn, args, kwargs, out in calls if out in contents]
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        for fn, args, kwargs in kept:
            fn(*args, **kwargs)
        walls.append(time.perf_counter() - start)
    return median(walls), len(kept), len(build.artifacts)


def _clear_caches() -> None:
    """cache_clear() every lru_cache at the top level of obsgen's modules."""
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("obsgen"):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def read_tree(root: Path) -> list[tuple[str, bytes]]:
    """Every file under `root` (relative path, bytes), in path order."""
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def write_time(files: list[tuple[str, bytes]], runs: int) -> float | None:
    """Median seconds (over `runs`) to write `files` (already in memory) into a fresh directory, creating
    its subdirectories: what a build cannot do faster, whatever it computes."""
    walls = []
    with tempfile.TemporaryDirectory(prefix="obsgen-bench-write-") as tmp:
        for i in range(runs):
            root = Path(tmp, str(i))
            start = time.perf_counter()
            for rel, content in files:
                target = root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(content)
            walls.append(time.perf_counter() - start)
            shutil.rmtree(root)
    return median(walls)


def needed_bytes(files: list[tuple[str, bytes]]) -> int:
    """Bytes of the output a user deploys or reads: everything but the generated tests (`<env>/tests/`),
    which exist only for `obsgen verify` and can be as small as promtool's expanding notation allows."""
    return sum(len(content) for rel, content in files if rel.split("/")[1:2] != ["tests"])


def rule_test_files(out: Path, envs: list[str]) -> list[Path]:
    """The generated rule test files `obsgen verify` runs for `envs`, in its order."""
    return [f for env in envs for f in sorted((out / env / "tests" / "rules").glob("*.test.yaml"))]


def promtool_time(files: list[Path], timeout: float) -> tuple[float | None, str]:
    """Wall seconds of `promtool test rules FILE` for every file (its directory as working directory), one
    promtool per CPU at a time, as `obsgen verify` runs them; (None, why) when one fails or the run passes
    `timeout`."""
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    promtool = shutil.which("promtool")
    if promtool is None:
        return None, "promtool is not installed"
    start = time.monotonic()

    def one(path: Path) -> str:
        left = max(timeout - (time.monotonic() - start), 1.0)
        child: Child = run_child([promtool, "test", "rules", path.name], cwd=path.parent, timeout=left)
        return "" if child.ok else f"promtool on {path.name}: {child.describe_failure()}"

    with ThreadPoolExecutor(max_workers=max(len(os.sched_getaffinity(0)), 1)) as pool:
        failures = [why for why in pool.map(one, files) if why]
    return (None, failures[0]) if failures else (time.monotonic() - start, "")
