"""The knowledge base on disk: immutable versions and one pointer to the current one.

```
<kb dir>/
  CURRENT                  {"version": ...}: replaced atomically (rename)
  .lock                    held by the one writer (ingest, delete, rollback)
  versions/<version>/      manifest.json, documents.jsonl, chunks.jsonl,
                           vectors.npy, lexical/ (tantivy)
```

A version is written under a temporary name, flushed, and renamed into
``versions/`` whole before ``CURRENT`` names it, so a reader (a retrieval
replica polling ``CURRENT``) sees the old version or the new one, never half of
one. The version a new one was built on stays on disk, so ``rollback`` can point
``CURRENT`` back at it; older ones beyond ``keep`` are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CURRENT = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
CHUNKS = "chunks.jsonl"
VECTORS = "vectors.npy"
LEXICAL = "lexical"


class StoreError(RuntimeError):
    """The knowledge base directory is unusable or an operation is impossible."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What a version's manifest says about it."""

    version: str
    parent: str | None
    created_at: str
    manifest: Mapping[str, Any]

    @property
    def sequence(self) -> int:
        """The version's sequence number (versions are ``v<seq>-<digest>``)."""
        return int(self.version[1:].split("-", 1)[0])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside, flush, rename: readers see the old bytes or the new ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class KnowledgeBaseStore:
    """Versions of one knowledge base directory."""

    def __init__(self, root: Path, *, keep: int = 5) -> None:
        self.root = Path(root)
        self.keep = max(2, keep)

    @property
    def versions_dir(self) -> Path:
        """Where versions live."""
        return self.root / VERSIONS

    def path(self, version: str) -> Path:
        """A version's directory."""
        return self.versions_dir / version

    def current(self) -> str | None:
        """The version readers should serve; None before the first publish."""
        try:
            record = json.loads((self.root / CURRENT).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"unreadable {self.root / CURRENT}: {exc}") from None
        version = record.get("version") if isinstance(record, dict) else None
        if not isinstance(version, str) or not (self.path(version) / MANIFEST).is_file():
            raise StoreError(f"{self.root / CURRENT} names no published version")
        return version

    def info(self, version: str) -> VersionInfo:
        """A version's manifest."""
        try:
            manifest = json.loads((self.path(version) / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"version {version} is unreadable: {exc}") from None
        return VersionInfo(
            version=version,
            parent=manifest.get("parent"),
            created_at=manifest.get("created_at", ""),
            manifest=manifest,
        )

    def versions(self) -> list[VersionInfo]:
        """Published versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        found = []
        for path in self.versions_dir.iterdir():
            if path.name.startswith(".") or not (path / MANIFEST).is_file():
                continue
            with contextlib.suppress(StoreError, ValueError):
                found.append(self.info(path.name))
        return sorted(found, key=lambda v: v.sequence)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (one ingest, delete or rollback at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def staging(self) -> Path:
        """A fresh directory to build a version in (renamed by ``publish``)."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.versions_dir, prefix=".build-"))

    def publish(self, staged: Path, version: str) -> None:
        """Move a built version into place and point CURRENT at it (caller holds the lock)."""
        for path in staged.rglob("*"):
            if path.is_file():
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
        target = self.path(version)
        if target.exists():
            raise StoreError(f"version {version} exists already")
        os.replace(staged, target)
        _fsync_dir(self.versions_dir)
        self._point(version)
        self._prune()

    def rollback(self) -> tuple[str, str]:
        """Point CURRENT at the version the current one was built on (caller holds the lock).

        Returns (from, to).
        """
        current = self.current()
        if current is None:
            raise StoreError("nothing is published yet")
        parent = self.info(current).parent
        if parent is None:
            raise StoreError(f"{current} is the first version; there is nothing to roll back to")
        if not (self.path(parent) / MANIFEST).is_file():
            raise StoreError(f"{current} was built on {parent}, which is no longer kept")
        self._point(parent)
        return current, parent

    def discard(self, staged: Path) -> None:
        """Remove a staging directory that will not be published."""
        shutil.rmtree(staged, ignore_errors=True)

    def _point(self, version: str) -> None:
        payload = json.dumps({"version": version}, sort_keys=True).encode() + b"\n"
        write_atomic(self.root / CURRENT, payload)

    def _prune(self) -> None:
        versions = self.versions()
        current = self.current()
        protected = {current}
        if current is not None:
            protected.add(self.info(current).parent)
        for info in versions[: max(0, len(versions) - self.keep)]:
            if info.version not in protected:
                shutil.rmtree(self.path(info.version), ignore_errors=True)
        for stale in self.versions_dir.glob(".build-*"):
            # Staging left by a writer that died (the lock is held: no one is building).
            shutil.rmtree(stale, ignore_errors=True)
