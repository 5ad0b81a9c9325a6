"""Build the waybill-contracts wheel (generated stubs other teams install) into dist/.

The wheel holds gen/ (messages, gRPC stubs, .pyi stubs), a py.typed marker in every
package, the vendored buf.validate module the generated code imports, and the .proto
sources beside their modules. Its version is contracts/CONTRACTS_VERSION, which follows
the contracts: contracts/contracts.lock records the digest of the .proto files the
version was recorded for, and --check fails when protos/ changed without a bump.

Exit codes: 0 done; 1 the version does not follow the contracts; 3 the build failed
(2 is argparse's, for bad usage).

  scripts/build_contracts.py                 check the version, then build dist/*.whl
  scripts/build_contracts.py --check         only check the version against protos/
  scripts/build_contracts.py --record        after bumping CONTRACTS_VERSION: record it
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = Path("contracts")
"""The wheel's project files (pyproject.toml, README.md, CONTRACTS_VERSION, the lock)."""
VERSION_FILE = PROJECT / "CONTRACTS_VERSION"
LOCK_FILE = PROJECT / "contracts.lock"
PROTO_ROOTS = (Path("protos"), Path("third_party/protovalidate"))
"""Where the shipped .proto files live; each is an include root (paths inside are import paths)."""
GEN = Path("gen")
PACKAGES = ("waybill", "buf")
"""Top-level packages of gen/ that go into the wheel."""
PROTOVALIDATE_LICENSE = Path("third_party/protovalidate/LICENSE")
VERSION_PATTERN = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")

EXIT_VERSION = 1
EXIT_BUILD = 3


class ContractsError(Exception):
    """The contracts' version or build is not right; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Lock:
    """What contracts/contracts.lock records."""

    version: str
    """The contracts version the digest was recorded for."""
    protos_sha256: str
    """Digest of every shipped .proto file (path and content)."""
    files: int
    """How many .proto files the digest covers."""


def proto_files(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """Every shipped .proto file as (include root, path inside it), sorted by import path."""
    found = [
        (src, p.relative_to(root / src))
        for src in PROTO_ROOTS
        for p in (root / src).rglob("*.proto")
    ]
    return sorted(found, key=lambda pair: pair[1].as_posix())


def protos_digest(root: Path = ROOT) -> tuple[str, int]:
    """SHA-256 over the import path and bytes of every shipped .proto file, and their count."""
    digest = hashlib.sha256()
    files = proto_files(root)
    for src, rel in files:
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update((root / src / rel).read_bytes() + b"\0")
    return digest.hexdigest(), len(files)


def parse_version(text: str) -> tuple[int, int, int]:
    """``MAJOR.MINOR.PATCH`` as a tuple; ContractsError for anything else."""
    match = VERSION_PATTERN.match(text)
    if match is None:
        raise ContractsError(f"{VERSION_FILE}: {text!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def read_version(root: Path = ROOT) -> str:
    """The contracts version (contracts/CONTRACTS_VERSION), checked for its form."""
    version = (root / VERSION_FILE).read_text().strip()
    parse_version(version)
    return version


def read_lock(root: Path = ROOT) -> Lock | None:
    """The recorded lock; None when there is none yet."""
    path = root / LOCK_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Lock(version=raw["version"], protos_sha256=raw["protos_sha256"], files=raw["files"])


def check(root: Path = ROOT) -> str:
    """The version when it follows the contracts; ContractsError saying what to do otherwise."""
    version = read_version(root)
    lock = read_lock(root)
    digest, _ = protos_digest(root)
    if lock is None:
        raise ContractsError(f"no {LOCK_FILE}: run scripts/build_contracts.py --record")
    if lock.version != version:
        raise ContractsError(
            f"{VERSION_FILE} says {version} but {LOCK_FILE} records {lock.version}: "
            "run scripts/build_contracts.py --record"
        )
    if lock.protos_sha256 != digest:
        raise ContractsError(
            f"the .proto files changed since contracts {version} was recorded: bump "
            f"{VERSION_FILE} (minor for additions, patch for comments; buf breaking refuses "
            "incompatible changes), then run scripts/build_contracts.py --record"
        )
    return version


def record(root: Path = ROOT) -> Lock:
    """Record the current version and digest; refuses a version that goes backwards, or the
    same version for different contracts."""
    version = read_version(root)
    digest, count = protos_digest(root)
    old = read_lock(root)
    changed = old is not None and old.protos_sha256 != digest
    if changed and old is not None and parse_version(version) <= parse_version(old.version):
        raise ContractsError(
            f"the .proto files changed since {old.version}: {VERSION_FILE} must be "
            f"greater than {old.version} (it is {version})"
        )
    lock = Lock(version=version, protos_sha256=digest, files=count)
    text = json.dumps(
        {"version": lock.version, "protos_sha256": lock.protos_sha256, "files": lock.files},
        indent=2,
    )
    (root / LOCK_FILE).write_text(text + "\n")
    return lock


def stage(root: Path, dest: Path) -> None:
    """Lay out the wheel's build tree in ``dest``: project files, and under src/ the
    generated packages with their .proto sources and py.typed markers."""
    for name in ("pyproject.toml", "README.md", "CONTRACTS_VERSION"):
        shutil.copy2(root / PROJECT / name, dest / name)
    src = dest / "src"
    for package in PACKAGES:
        shutil.copytree(
            root / GEN / package, src / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for include_root, rel in proto_files(root):
        target = src / rel
        if not target.parent.is_dir():
            raise ContractsError(f"{include_root / rel} has no generated module in {GEN}/")
        shutil.copy2(root / include_root / rel, target)
    shutil.copy2(root / PROTOVALIDATE_LICENSE, src / "buf" / "validate" / "LICENSE")
    # PEP 561: in namespace packages the marker goes into the packages that hold modules.
    for package in PACKAGES:
        for folder in [src / package, *(p for p in (src / package).rglob("*") if p.is_dir())]:
            (folder / "py.typed").touch()


def build(root: Path, out: Path, *, isolation: bool = True, quiet: bool = False) -> Path:
    """Build the wheel into ``out`` with pip; the wheel's path."""
    version = check(root)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="waybill-contracts-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        stage(root, tree)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
        if not isolation:
            command.append("--no-build-isolation")
        if quiet:
            command.append("--quiet")
        command.append(str(tree))
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise ContractsError(f"pip wheel failed with exit code {result.returncode}")
    wheel = out / f"waybill_contracts-{version}-py3-none-any.whl"
    if not wheel.exists():
        raise ContractsError(f"pip wheel finished but {wheel} is missing")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--check", action="store_true", help="only check the version against protos/"
    )
    action.add_argument(
        "--record",
        action="store_true",
        help="record CONTRACTS_VERSION and the digest of protos/ in contracts/contracts.lock",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="wheel folder (default: dist/)"
    )
    parser.add_argument(
        "--no-build-isolation",
        action="store_true",
        help="build with this interpreter's setuptools instead of fetching one (offline)",
    )
    parser.add_argument("--quiet", action="store_true", help="less of pip's output")
    args = parser.parse_args(argv)
    try:
        if args.record:
            lock = record(ROOT)
            print(f"recorded contracts {lock.version} for {lock.files} .proto files")
            return 0
        version = check(ROOT)
        print(f"contracts {version} follows protos/ ({LOCK_FILE})")
        if args.check:
            return 0
    except ContractsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_VERSION
    print(f"building waybill-contracts {version} into {args.out} ...", flush=True)
    try:
        wheel = build(
            ROOT, args.out.resolve(), isolation=not args.no_build_isolation, quiet=args.quiet
        )
    except ContractsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BUILD
    print(f"built {wheel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
