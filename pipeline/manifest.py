"""manifest.json: the one contract between the build, the Python tools and the page.

The build writes it last, into the staging folder; `predict`, `evaluate`, `serve` and
the site's up-to-date check read it back through this module, so there is one place
that knows its file name, its format tag and what a broken one looks like.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError

FORMAT = "tfjs-transfer/1"
FILENAME = "manifest.json"


class ManifestError(UserError):
    """A site folder without a readable manifest of ours."""


def parse(path: Path) -> dict:
    """The JSON object in `path`; ManifestError names the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path.parent}: not a built site (no {FILENAME}); run `tfjs-transfer build` first") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e.strerror})") from None
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ManifestError(f"{path}: corrupt manifest ({e})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{path}: corrupt manifest (not a JSON object)")
    return obj


def load(site: Path) -> dict:
    """The manifest of a site we built; ManifestError if it is missing, corrupt or of another format."""
    path = Path(site) / FILENAME
    manifest = parse(path)
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r} "
                            "(rebuild the site with this version of tfjs-transfer)")
    return manifest


def read(site: Path) -> dict | None:
    """The manifest of a site we built, or None (no site, a corrupt one, another format)."""
    try:
        return load(site)
    except ManifestError:
        return None


def write(site: Path, manifest: dict) -> None:
    """Writes `manifest` (tagged with FORMAT) into the site folder."""
    write_json(Path(site) / FILENAME, {"format": FORMAT, **manifest})


def write_json(path: Path, obj) -> None:
    """The site's JSON files: indented, UTF-8, a final newline."""
    Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
