"""Where the built page (the web bundle a site serves) comes from.

A checkout builds it into web/dist (`make web`); an installed wheel carries a copy as
package data in tfjs_transfer/web/ (setup.py puts it there). A checkout's own web/dist
wins, so that `make build` after editing web/ serves the fresh bundle.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import UserError

# The checkout this module runs from, if any: the folder holding pipeline/ and web/.
CHECKOUT = Path(__file__).resolve().parent.parent
CHECKOUT_WEB_DIST = CHECKOUT / "web" / "dist"


def is_checkout() -> bool:
    """True when running from a source checkout (web/'s sources beside the package), not an install."""
    return (CHECKOUT / "web" / "build.mjs").is_file()


def packaged_web_dist() -> Path:
    """The page shipped inside the installed package (absent in an editable install)."""
    return Path(str(resources.files(__package__) / "web"))


def is_built(folder: Path) -> bool:
    return (Path(folder) / "index.html").is_file()


def files(folder: Path) -> list[tuple[str, Path]]:
    """Every file of a page bundle with its path relative to it (chunks may sit in subfolders)."""
    return sorted((p.relative_to(folder).as_posix(), p) for p in Path(folder).rglob("*") if p.is_file())


def find_web_dist(explicit: str | Path | None = None) -> Path:
    """The page bundle to copy into a site: `explicit` if given, else the checkout's
    web/dist, else the packaged copy; a UserError saying how to get one otherwise."""
    if explicit is not None:
        folder = Path(explicit)
        if not is_built(folder):
            raise UserError(f"{folder}: no built page here (index.html missing); build one with "
                            "`cd web && npm ci && npm run build` and pass its dist/ folder")
        return folder
    if is_checkout():
        if is_built(CHECKOUT_WEB_DIST):
            return CHECKOUT_WEB_DIST
        if is_built(packaged_web_dist()):
            return packaged_web_dist()
        raise UserError(f"{CHECKOUT_WEB_DIST}: the page is not built; run `make web` "
                        "(or `cd web && npm ci && npm run build`), or pass --web-dist")
    if is_built(packaged_web_dist()):
        return packaged_web_dist()
    raise UserError(f"{packaged_web_dist()}: this installation of tfjs-transfer has no built page; "
                    "reinstall it from a wheel (`make wheel` in a checkout) or pass --web-dist FOLDER")
