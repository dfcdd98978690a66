"""A project made in the page, as a build's dataset: a zip (read in place, see archive.py) or
its unzipped folder, holding `<class folder>/<image>` entries and, at the top, project.json:

  {"format": "tfjs-transfer-project/1", "name": ..., "classes": [{"name", "folder"}...],
   "examples": [{"path": "folder/file.jpg", "role": "train"|"valid"|"test"}...]}

With project.json the classes come in its order under their own names (not the safe folder
names) and each example keeps its role: "valid" and "test" are the build's validation and
test images, as valid/ and test/ folders would be. A zip without it is read as class folders
(sorted, roles by the build's own split). A project.json that contradicts itself or the files
(a missing file, an unknown role, a class twice) refuses the whole input; an entry that is
not a usable image (not listed, not an image, a symlink, a nested zip, an encrypted entry)
is skipped and reported.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from . import archive
from .dataset import IMAGE_EXTENSIONS, Dataset, Sample, Skipped, _inside
from .errors import UserError

FORMAT = "tfjs-transfer-project/1"
FILENAME = "project.json"
ROLES = ("train", "valid", "test")
MAX_PROJECT_JSON_BYTES = 64 * 1024 * 1024


def is_project(path: Path) -> bool:
    """A zip, or a folder with project.json at its top: what `scan` reads."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip" or archive.is_zip(path)
    return (path.is_dir() and (path / FILENAME).is_file())


def scan(root: Path) -> Dataset:
    """The project's samples (label = class name, split = role) and what was skipped."""
    root = Path(root)
    skipped: list[Skipped] = []
    entries = _zip_entries(root, skipped) if root.is_file() else _folder_entries(root, skipped)
    if FILENAME in entries:
        spec = _read_spec(root, entries.pop(FILENAME))
        labels, samples = _from_spec(root, spec, entries, skipped)
        layout = "project"
    else:
        labels, samples = _class_folders(entries, skipped)
        layout = "folders"
    if not samples:
        raise UserError(f"{root}: no images found (expected <class folder>/<image> entries, "
                        f"with or without {FILENAME})")
    return Dataset(root, layout, labels, samples, skipped)


def _zip_entries(root: Path, skipped: list[Skipped]) -> dict[str, object]:
    """Relative name -> ZipMember of every usable file entry (one wrapping folder removed)."""
    infos = [i for i in archive.open_zip(root) if not _hidden(i.filename)]
    names = [i.filename for i in infos]
    strip = _wrapper(names)
    out = {}
    for info in infos:
        member = archive.ZipMember(root, info.filename)
        problem = archive.entry_problem(info)
        if problem:
            skipped.append(Skipped(member, problem))
            continue
        out[_utf8_name(info)[len(strip):]] = member
    return out


def _utf8_name(info) -> str:
    """The entry's name as project.json spells it: zips written without the UTF-8 flag hold
    UTF-8 bytes that zipfile decoded as cp437 (the format's old default)."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _wrapper(names: list[str]) -> str:
    """'top/' when every entry sits in one folder that itself holds folders (a zipped
    project folder), else ''."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        top = next(iter(tops)) + "/"
        if any(n[len(top):].count("/") >= 1 for n in names) or top + FILENAME in names:
            return top
    return ""


def _folder_entries(root: Path, skipped: list[Skipped]) -> dict[str, Path]:
    """Relative name -> Path of project.json and the files one folder down (symlinks
    leading outside the folder skipped, as for any dataset folder)."""
    out = {FILENAME: root / FILENAME}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(d.iterdir()):
            if f.name.startswith("."):
                continue
            if f.is_dir():
                skipped.append(Skipped(f, "nested folder inside a class folder ignored"))
            elif _inside(f, root, skipped):
                out[f"{d.name}/{f.name}"] = f
    return out


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def _read_spec(root: Path, source) -> dict:
    where = f"{root}: {FILENAME}"
    if source.stat().st_size > MAX_PROJECT_JSON_BYTES:
        raise UserError(f"{where} is over {MAX_PROJECT_JSON_BYTES:,} bytes")
    try:
        with source.open("rb") as f:
            spec = json.loads(f.read().decode("utf-8"))
    except (ValueError, OSError) as e:
        raise UserError(f"{where} is not readable JSON ({e})") from None
    if not isinstance(spec, dict):
        raise UserError(f"{where} is not a JSON object")
    if spec.get("format") != FORMAT:
        raise UserError(f"{where} has format {spec.get('format')!r}; this version reads {FORMAT!r}")
    if not isinstance(spec.get("classes"), list) or not isinstance(spec.get("examples"), list):
        raise UserError(f"{where} needs a 'classes' list and an 'examples' list")
    return spec


def _from_spec(root: Path, spec: dict, entries: dict, skipped: list[Skipped]) -> tuple[list[str], list[Sample]]:
    where = f"{root}: {FILENAME}"
    labels, label_of = [], {}
    for c in spec["classes"]:
        name, folder = (c.get("name"), c.get("folder")) if isinstance(c, dict) else (None, None)
        if not isinstance(name, str) or not name.strip() or not isinstance(folder, str):
            raise UserError(f"{where}: class {c!r} needs a non-empty 'name' and a 'folder'")
        if folder in ("", ".", "..") or "/" in folder or "\\" in folder:
            raise UserError(f"{where}: class '{name}' has folder {folder!r}, not a plain folder name")
        if name in labels:
            raise UserError(f"{where}: class '{name}' is listed twice")
        if folder in label_of:
            raise UserError(f"{where}: classes '{label_of[folder]}' and '{name}' share the folder '{folder}'")
        labels.append(name)
        label_of[folder] = name
    samples, listed = [], set()
    for e in spec["examples"]:
        path, role = (e.get("path"), e.get("role", "train")) if isinstance(e, dict) else (None, None)
        if not isinstance(path, str) or path.count("/") != 1:
            raise UserError(f"{where}: example {e!r} needs a 'path' of the form <class folder>/<file>")
        if role not in ROLES:
            raise UserError(f"{where}: example '{path}' has role {role!r}; expected one of {', '.join(ROLES)}")
        folder = path.split("/")[0]
        if folder not in label_of:
            raise UserError(f"{where}: example '{path}' is in folder '{folder}', which no class has")
        if path in listed:
            raise UserError(f"{where}: example '{path}' is listed twice")
        listed.add(path)
        if path not in entries:
            problem = next((s.reason for s in skipped if str(s.path).endswith("/" + path)), None)
            if problem:
                continue  # already reported (a symlink, a nested zip...)
            raise UserError(f"{where} lists '{path}', which is not in {root}")
        if PurePosixPath(path).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(entries[path], "not an image file extension"))
            continue
        samples.append(Sample(entries[path], label_of[folder], role))
    for rel, source in sorted(entries.items()):
        if rel not in listed:
            skipped.append(Skipped(source, f"not listed in {FILENAME}"))
    return labels, samples


def _class_folders(entries: dict, skipped: list[Skipped]) -> tuple[list[str], list[Sample]]:
    samples = []
    for rel, source in sorted(entries.items()):
        parts = rel.split("/")
        if len(parts) == 1:
            skipped.append(Skipped(source, "file outside any class folder ignored"))
        elif len(parts) > 2:
            skipped.append(Skipped(source, "nested folder inside a class folder ignored"))
        elif PurePosixPath(rel).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(source, "not an image file extension"))
        else:
            samples.append(Sample(source, parts[0]))
    return sorted({s.label for s in samples}), samples
