"""The library behind `obsgen build` and `obsgen check`: load, compile, then write or compare."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

from obsgen.errors import known_name
from obsgen.output import tree

if TYPE_CHECKING:  # the drift check's fast path never needs the model
    from obsgen.model.artifact import Artifact
    from obsgen.model import Model


class Build(NamedTuple):
    model: Model
    artifacts: list[Artifact]
    scopes: list[str]  # the parts of the output directory this build owns ("" = all of it), in the spec's order
    # artifacts are in the spec's environment order (then by path), so every listing follows the spec

    @property
    def order(self) -> list[str]:
        """The spec's environment names, in the spec's order."""
        return [e.name for e in self.model.environments]


def compile_spec(spec: str, envs: Sequence[str] = (), only: Sequence[str] = ()) -> Build:
    """Load and compile a spec for the named environments (all when none are named); `only` limits the
    targets (see obsgen.compile.targets) and leaves out the manifest."""
    model, names = _load(spec, envs)
    return _compiled(model, names, only)


def _compiled(model: Model, envs: Sequence[str], only: Sequence[str]) -> Build:
    from obsgen.compile import compile_all

    known = [e.name for e in model.environments]
    chosen = [e for e in model.environments if not envs or e.name in envs]
    scopes = [""] if not envs else [e.name for e in chosen]
    artifacts = tree.in_order(compile_all(model, chosen, only), known, key=lambda a: a.path)
    return Build(model, artifacts, scopes)


def _load(spec: str, envs: Sequence[str]) -> tuple[Model, list[str]]:
    """The spec's model and the environments `envs` name, as the spec spells them (`Dev` is `dev`); a name
    the spec does not define is an error with the closest one (obsgen.errors.known_name)."""
    from obsgen.spec import load_spec

    model = load_spec(spec)
    known = [e.name for e in model.environments]
    return model, [known_name("environment", name, known) for name in envs]


def deployable(spec: str, env: str, targets: Sequence[str], out: Path | None) -> tuple[Build, bool]:
    """What `diff` and `apply` deploy to one environment: the `targets`' files (names of
    obsgen.compile.DEPLOYED), read from `out` when its manifest shows them to be this spec's compile
    (obsgen.output.compiled), else compiled -- only those targets. The flag says whether they were read."""
    from obsgen.output.compiled import read_deployed

    model, [env] = _load(spec, [env])
    if out is not None:
        artifacts = read_deployed(out, model, model.environment(env), targets)
        if artifacts is not None:
            return Build(model, artifacts, [env]), True
    return _compiled(model, [env], targets), False


def build(spec: str, out: Path, envs: Sequence[str] = (), *,
          allow_nonempty: bool = False) -> tuple[Build, tree.WriteReport]:
    """Compile, then write into `out`; a non-empty `out` holding no obsgen manifest is refused unless
    `allow_nonempty`. Only files obsgen's previous manifests list are ever removed."""
    from obsgen.output import stamp

    result = compile_spec(spec, envs)  # compile everything before touching the output
    report = tree.write(out, result.artifacts, result.scopes, allow_nonempty=allow_nonempty, order=result.order)
    if not report.kept:  # files obsgen did not write in an environment tree are drift: no stamp says "clean"
        stamp.record(spec, out, result.scopes)
    return result, report


def check(spec: str, out: Path, envs: Sequence[str] = (), *, fast: bool = True) -> tuple[int, tree.Drift]:
    """(number of files, drift); the fast path answers without compiling when a stamp proves it safe."""
    from obsgen.output import stamp

    scopes = sorted(set(envs)) if envs else [""]
    if fast:
        files = stamp.clean(spec, out, scopes)
        if files is not None:
            return files, tree.Drift()
    result = compile_spec(spec, envs)
    drift = tree.compare(out, result.artifacts, result.scopes, result.model.source, order=result.order)
    if drift.clean:
        stamp.record(spec, out, result.scopes)
    return len(result.artifacts), drift
