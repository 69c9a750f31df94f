"""Output paths that cannot destroy what the router needs.

Every command that writes a file names its outputs to `check_outputs` before writing anything. A
path is refused when it is (symbolic and hard links included) an input, another output of the same
run, a file inside the store's home, the SQLite database or its -wal/-shm, or a file under a model
version's folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path


class UnsafeOutput(ValueError):
    """An output path would overwrite something the router reads or needs."""


@dataclass
class Protected:
    """What no output may overwrite: folders (everything under them) and single files, each with a
    description for the message."""
    folders: dict[Path, str] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)


def protected(home: Path, engine=None) -> Protected:
    """The store's home, the SQLite database of `engine` with its -wal/-shm, and every registered
    model version's folder."""
    p = Protected({Path(home): f"the store's home {home}"})
    if engine is None:
        return p
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(url.database)
        for suffix in ("", "-wal", "-shm", "-journal"):
            p.files[db.with_name(db.name + suffix)] = f"the store's database {db}{suffix and ' (' + suffix[1:] + ')'}"
    from sqlmodel import Session, select

    from router.store import ModelVersion
    try:
        with Session(engine) as s:
            for version, path in s.exec(select(ModelVersion.version, ModelVersion.path)):
                p.folders[Path(path)] = f"model {version}'s folder {path}"
    except Exception:  # noqa: BLE001 - a store without the table yet has no models to protect
        pass
    return p


def _stat(p: Path) -> os.stat_result | None:
    try:
        return p.stat()
    except (OSError, ValueError):
        return None


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _inodes(folder: Path) -> set[tuple[int, int]]:
    """(device, inode) of every file under `folder`."""
    out = set()
    for root, _, names in os.walk(folder):
        for n in names:
            if (st := _stat(Path(root, n))) is not None:
                out.add(_key(st))
    return out


def _inside(p: Path, folder: Path) -> bool:
    try:
        return p.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def _same(a: Path, b: Path) -> bool:
    """The same file: the same inode when both exist (hard and symbolic links), else the same resolved path."""
    sa, sb = _stat(a), _stat(b)
    if sa is not None and sb is not None:
        return _key(sa) == _key(sb)
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def check_outputs(writes: dict[str, str | Path], reads: dict[str, str | Path] | None = None,
                  keep: Protected | None = None) -> None:
    """Raise UnsafeOutput (one line) when a path in `writes` (what it is -> path; '-' is standard
    output) is a path in `reads`, another entry of `writes`, or inside what `keep` protects."""
    reads = {k: Path(v) for k, v in (reads or {}).items() if str(v) != "-"}
    writes = {k: Path(v) for k, v in writes.items() if str(v) != "-"}
    keep = keep or Protected()
    seen: list[tuple[str, Path]] = []
    for what, p in writes.items():
        def refuse(target: str):
            raise UnsafeOutput(f"the {what} {p} would overwrite {target}; name another file")

        for name, q in reads.items():
            if _same(p, q):
                refuse(f"the {name} {q}")
        for name, q in seen:
            if _same(p, q):
                refuse(f"the {name} {q}")
        for q, desc in keep.files.items():
            if _same(p, q):
                refuse(desc)
        for folder, desc in keep.folders.items():
            if _inside(p, folder):
                refuse(f"a file in {desc}")
        st = _stat(p)
        if st is not None and st.st_nlink > 1:  # a hard link elsewhere to a file the router needs
            for folder, desc in keep.folders.items():
                if _key(st) in _inodes(folder):
                    refuse(f"a file in {desc} (a hard link to it)")
        seen.append((what, p))


def check_writable(writes: dict[str, str | Path]) -> None:
    """Raise WriteError when an output cannot be written, before any work: a folder, a path under a
    file, no permission, a read-only or full disk. Probes for real (opens for appending; removes a file
    it created), so it holds for root too."""
    from router.io import WriteError

    for p in (Path(v) for v in writes.values() if str(v) != "-"):
        if p.is_dir():
            raise WriteError(p, IsADirectoryError(errno.EISDIR, "is a folder"))
        folder = next(a for a in p.absolute().parents if a.exists())
        if not folder.is_dir():
            raise WriteError(p, NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder"))
        existed = p.exists()
        try:
            if folder == p.absolute().parent:
                with open(p, "a"):
                    pass
            elif not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, f"cannot create folders in {folder} (permission denied)")
            if not existed or p.is_file():
                st = os.statvfs(folder)
                if st.f_blocks and not st.f_bavail:  # (a file system that reports its size)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as e:
            raise WriteError(p, e) from None
        finally:
            if not existed:
                with contextlib.suppress(OSError):
                    p.unlink()
