"""A zip of images read in place: its entries checked before anything is read, each image
streamed out of it when needed, never the whole archive extracted to disk or memory.

`open_zip` refuses (UserError naming the zip and the entry) what only a crafted or broken
archive holds: a corrupt zip, an entry name escaping its folder (`..`, an absolute path, a
drive letter, a backslash), duplicate names, too many entries, and a zip bomb (an entry or
the total over the size caps, or a large entry compressed over MAX_RATIO:1). `entry_problem`
names what a single entry cannot be used for (a symlink, a nested zip, an encrypted entry),
for the caller to skip it. Reading is bounded too, since the sizes in the headers can lie:
zipfile stops each entry at its declared size and then fails its CRC check.

`ZipMember` stands where a dataset sample's path would: `open("rb")`, `stat().st_size`,
`name`, `suffix` and `relative_to(archive)` behave as a Path's do, so decoding, digests
and the feature cache (keyed by content) treat an entry like the same file in a folder.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UserError

MAX_ENTRIES = 100_000
MAX_ENTRY_BYTES = 256 * 1024 * 1024      # one image file; a 200-megapixel phone JPEG is far below
MAX_TOTAL_BYTES = 16 * 1024 * 1024 * 1024
MAX_RATIO = 100                         # images barely compress: JPEG/PNG ~1:1, BMP ~10:1
RATIO_FREE_BYTES = 1024 * 1024          # smaller entries may compress well (a flat PNG, project.json)
DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipMember:
    """One entry of a zip, usable where a dataset sample's Path is."""
    archive: Path
    member: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.member).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.member).stem

    def relative_to(self, root) -> PurePosixPath:
        if Path(root) != self.archive:
            raise ValueError(f"{self} is not inside {root}")
        return PurePosixPath(self.member)

    def open(self, mode: str = "rb"):
        if mode != "rb":
            raise ValueError("zip entries are read-only")
        zf = _opened(self.archive)
        try:
            return _EntryReader(zf.open(self.member))
        except KeyError:
            raise FileNotFoundError(f"{self}: no such entry") from None
        except (RuntimeError, NotImplementedError) as e:  # encrypted, unknown compression
            raise OSError(str(e)) from None

    def stat(self) -> os.stat_result:
        size = _opened(self.archive).getinfo(self.member).file_size
        return os.stat_result((stat.S_IFREG | 0o444, 0, 0, 1, 0, 0, size, 0, 0, 0))

    def __str__(self) -> str:
        return f"{self.archive}/{self.member}"


class _EntryReader(io.BufferedIOBase):
    """A zip entry's stream whose failures (a bad CRC: the data is not what the header said;
    truncated or corrupt compressed data) are OSErrors, as a broken file's would be."""

    def __init__(self, f):
        self._f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._f.seekable()

    def read(self, n: int = -1) -> bytes:
        return self._guard(self._f.read, n)

    def read1(self, n: int = -1) -> bytes:
        return self._guard(self._f.read1, n)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._guard(self._f.seek, pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()

    @staticmethod
    def _guard(fn, *args):
        try:
            return fn(*args)
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise OSError(f"corrupt zip entry: {e}") from None


_OPEN: dict[tuple, zipfile.ZipFile] = {}
KEEP_OPEN = 4


def _opened(archive: Path) -> zipfile.ZipFile:
    """One open ZipFile per archive (its central directory read once, not once an image),
    reopened if the file changed; only the last few stay open."""
    st = Path(archive).stat()
    key = (str(archive), st.st_mtime_ns, st.st_size)
    zf = _OPEN.pop(key, None) or zipfile.ZipFile(archive)
    _OPEN[key] = zf  # most recent last
    while len(_OPEN) > KEEP_OPEN:
        _OPEN.pop(next(iter(_OPEN))).close()  # entries still being read keep their own handle
    return zf


def is_zip(path: Path) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)


def open_zip(archive: Path) -> list[zipfile.ZipInfo]:
    """The archive's file entries (folders left out), every name and size checked; UserError
    (naming the zip and the entry) for a corrupt or hostile archive."""
    archive = Path(archive)
    try:
        zf = _opened(archive)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"{archive}: not a readable zip ({e})") from None
    if len(infos) > MAX_ENTRIES:
        raise UserError(f"{archive}: {len(infos):,} entries, over the limit of {MAX_ENTRIES:,}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        check_name(archive, info.filename)
        if info.filename in seen:
            raise UserError(f"{archive}: entry '{info.filename}' appears twice")
        seen.add(info.filename)
        if info.is_dir():
            continue
        if info.file_size > MAX_ENTRY_BYTES:
            raise UserError(f"{archive}: entry '{info.filename}' unpacks to {info.file_size:,} bytes, over the "
                            f"limit of {MAX_ENTRY_BYTES:,} for one file (a zip bomb?)")
        if info.file_size > RATIO_FREE_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UserError(f"{archive}: entry '{info.filename}' is compressed "
                            f"{info.file_size / max(info.compress_size, 1):,.0f}:1, over the limit of "
                            f"{MAX_RATIO}:1 (a zip bomb?)")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise UserError(f"{archive}: entries unpack to over {MAX_TOTAL_BYTES:,} bytes in all, at "
                            f"entry '{info.filename}' (a zip bomb?)")
    return [i for i in infos if not i.is_dir()]


def check_name(archive: Path, name: str) -> None:
    """Refuse an entry name that could land outside the folder it is unpacked into."""
    problem = None
    if "\\" in name:
        problem = "holds a backslash"
    elif name.startswith("/"):
        problem = "is an absolute path"
    elif DRIVE.match(name):
        problem = "starts with a drive letter"
    elif ".." in PurePosixPath(name).parts:
        problem = "escapes its folder with '..'"
    elif "\0" in name:
        problem = "holds a NUL character"
    if problem:
        raise UserError(f"{archive}: entry '{name}' {problem}; refusing the whole archive")


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why this (file) entry cannot be used as an image, or None."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symlink inside the zip, not followed"
    if info.flag_bits & 0x1:
        return "an encrypted zip entry"
    if PurePosixPath(info.filename).suffix.lower() in (".zip", ".jar", ".7z", ".rar", ".gz", ".tar", ".tgz"):
        return "a nested archive, not opened"
    return None
