"""pipeline/site.py without TensorFlow: the site and its Python-side folder swapped in as a
pair (or not at all, even when the build is killed at any step of the swap), the refusals,
and the lock that makes two builds of one OUT take turns (two real processes)."""

import os
import subprocess
import sys
import time

import pytest

from tfjs_transfer import manifest, site

from .conftest import ROOT


def write_pair(site_dir, python_dir, fingerprint):
    """A minimal site and Python-side folder from the build `fingerprint`."""
    site_dir.mkdir(parents=True, exist_ok=True)
    python_dir.mkdir(parents=True, exist_ok=True)
    manifest.write(site_dir, {"fingerprint": fingerprint})
    (site_dir / "index.html").write_text(fingerprint)
    manifest.write_python(python_dir, fingerprint, ["head.h5"])
    (python_dir / "head.h5").write_text(fingerprint)


def pair(out):
    """(the site's fingerprint, the Python folder's) as a reader sees them; None where missing."""
    m, p = manifest.read(out), manifest.read_python(site.python_dir(out))
    return (m and m["fingerprint"], p and p["fingerprint"])


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name not in (out.name, site.python_dir(out).name))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the build."""


def test_python_dir_is_beside_the_site_and_the_manifest_path_points_there(tmp_path):
    out = tmp_path / "site"
    assert site.python_dir(out) == tmp_path / "site.python"
    assert (out / site.python_path_from_site(out)).resolve() == (tmp_path / "site.python").resolve()


def test_a_build_swaps_in_both_folders(tmp_path):
    out = tmp_path / "site"
    write_pair(out, site.python_dir(out), "A")
    with site.staging(out) as staged:
        write_pair(staged.site, staged.python, "B")
    assert pair(out) == ("B", "B") and leftovers(out) == []
    assert (site.python_dir(out) / "head.h5").read_text() == "B"


def test_the_first_build_writes_both_folders(tmp_path):
    out = tmp_path / "site"
    with site.staging(out) as staged:
        write_pair(staged.site, staged.python, "B")
    assert pair(out) == ("B", "B") and leftovers(out) == []


@pytest.mark.parametrize("previous", [True, False])
@pytest.mark.parametrize("step", range(8))
def test_a_build_killed_at_any_step_of_the_swap_leaves_one_whole_pair(tmp_path, monkeypatch, step, previous):
    """Each os.replace of the swap is a step; the build dies before step `step`, leaving its
    folders as they are; the next build's remove_stale then finds the previous pair or the
    new one, never a mix, and nothing else beside OUT."""
    out = tmp_path / "site"
    if previous:
        write_pair(out, site.python_dir(out), "A")
    real_replace, calls = os.replace, []

    def replace(*a):
        if len(calls) == step:
            raise Killed
        calls.append(a)
        return real_replace(*a)

    with monkeypatch.context() as m:
        m.setattr(site.os, "replace", replace)
        m.setattr(site, "_roll_back", lambda *a: None)  # a killed process cleans nothing up
        m.setattr(site.shutil, "rmtree", lambda *a, **k: None)
        try:
            with site.staging(out) as staged:
                write_pair(staged.site, staged.python, "B")
            killed = False
        except Killed:
            killed = True
    monkeypatch.setattr(site, "_alive", lambda pid: False)
    site.remove_stale(out)
    assert pair(out) in ((("A", "A") if previous else (None, None)), ("B", "B")), (step, calls)
    assert leftovers(out) == []


@pytest.mark.parametrize("step", range(4))
def test_an_error_during_the_swap_restores_the_previous_pair(tmp_path, monkeypatch, step):
    out = tmp_path / "site"
    write_pair(out, site.python_dir(out), "A")
    real_replace, calls = os.replace, []

    def replace(*a):
        if len(calls) == step:
            calls.append(None)
            raise OSError("disk full")
        calls.append(a)
        return real_replace(*a)

    monkeypatch.setattr(site.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        with site.staging(out) as staged:
            write_pair(staged.site, staged.python, "B")
    monkeypatch.setattr(site.os, "replace", real_replace)
    assert pair(out) == ("A", "A") and leftovers(out) == []


def test_stale_leftovers_of_dead_builds_are_cleared_and_live_ones_kept(tmp_path):
    out = tmp_path / "site"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # died mid-swap: the new Python folder is in, the previous site moved aside, the new one still staged
    building = tmp_path / f".site.building-{dead.pid}-x1y2"
    write_pair(building / "site", building / "python", "B")
    old = tmp_path / f".site.old-{dead.pid}-123"
    write_pair(old / "site", old / "python", "A")
    (building / "python").rename(site.python_dir(out))
    (tmp_path / f".site.trash-{dead.pid}-456" / "models").mkdir(parents=True)  # died deleting a folder
    live = tmp_path / f".site.building-{os.getpid()}-abcd"
    live.mkdir()
    other = tmp_path / f".docs.building-{dead.pid}-abcd"
    other.mkdir()
    site.remove_stale(out)
    assert pair(out) == ("A", "A")  # the previous pair, put back
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "site", "site.python"])


def test_a_python_folder_that_is_not_ours_is_never_replaced(tmp_path):
    out = tmp_path / "site"
    py = site.python_dir(out)
    py.mkdir()
    (py / "analysis.py").write_text("precious")
    with pytest.raises(site.UserError, match="refusing to replace"):
        site.check_output(out)
    (py / "analysis.py").unlink()
    py.rmdir()
    py.write_text("a file")
    with pytest.raises(site.UserError, match="not a folder"):
        site.check_output(out)


HOLD = """
import sys, time
from pathlib import Path
from tfjs_transfer import site
with site.exclusive(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def test_a_second_holder_of_the_lock_waits_for_the_first_and_says_for_whom(tmp_path):
    out = tmp_path / "site"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "2"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline() == "locked\n"
    lock = tmp_path / ".site.lock"
    assert lock.read_text().strip() == str(first.pid)
    t = time.monotonic()
    second = subprocess.run([sys.executable, "-c", HOLD, str(out), "0"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    waited = time.monotonic() - t
    assert first.wait(timeout=60) == 0 and second.returncode == 0, second.stderr
    assert f"waiting for the build of {out} running as pid {first.pid}" in second.stderr
    assert second.stdout == "locked\nreleased\n" and waited > 1
    assert not lock.exists()  # the last holder removes it


def test_the_lock_of_a_killed_holder_is_free(tmp_path):
    out = tmp_path / "site"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "60"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline() == "locked\n"
    first.kill()
    first.wait()
    assert (tmp_path / ".site.lock").exists()  # left behind by the dead process, but unlocked
    with site.exclusive(out):
        assert (tmp_path / ".site.lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / ".site.lock").exists()
