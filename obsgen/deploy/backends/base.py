"""The backend interface: desired objects, live objects, apply, restore."""
from __future__ import annotations

from abc import ABC, abstractmethod

from obsgen.deploy.access import connect  # noqa: F401  (re-exported)
from obsgen.model.artifact import Artifact
from obsgen.deploy.plan import Change, Obj
from obsgen.deploy.http import BackendError, ConflictError, Http, parallel  # noqa: F401  (re-exported)


class Backend(ABC):
    name: str
    notes: tuple[str, ...] = ()  # what `read` noticed that the user should know (printed, never fatal)
    after: tuple[str, ...] = ()  # what a successful `apply` could not confirm yet (printed with its result)

    @abstractmethod
    def desired(self, artifacts: list[Artifact]) -> list[Obj]:
        """The objects the build says should exist, normalised like `read`'s."""

    @abstractmethod
    def read(self, desired: list[Obj]) -> list[Obj]:
        """The live objects: every owned one, and any unowned one sharing a desired key."""

    def prepare(self, changes: list[Change]) -> None:
        """Checks that need no write, run for every backend before the first write of any (so a config a
        checker rejects stops the apply with nothing changed anywhere). Raises to stop; default: none."""

    @abstractmethod
    def apply(self, changes: list[Change], *, force: bool = False) -> list[Change]:
        """Apply changes in order; returns those applied so far even when it raises (see `applied`)."""

    @abstractmethod
    def restore(self, applied: list[Change]) -> None:
        """Put back the live state captured before `applied` were made, in reverse order."""

    def why_blocked(self, change: Change) -> str:
        """Why a BLOCKED change cannot be applied (a desired name held by an object obsgen does not own)."""
        return (f"{change.obj.backend} {change.obj.kind} {change.obj.key} exists but is not obsgen's; obsgen never "
                f"changes it")
