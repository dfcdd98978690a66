"""Load test for the static server (pipeline/serve.py) on the loopback interface.

The server runs in a subprocess (the real app under waitress, port 0): a load
generator in the same process would fight the server for the GIL and the
figures would describe that fight, not the server.  The client side is N
threads, each with one keep-alive http.client connection, cycling through the
given paths for a fixed, bounded time and sending `Accept-Encoding: gzip` like
a browser.  Before timing, every path is fetched once and its body checked
against the file (so the server's hash/gzip caches are warm; the cold figure
is reported separately).

    python bench/serve_load.py SITE [--clients 32] [--seconds 10]
        [--paths index.html,models/backbone/model.json,models/backbone/group1-shard1of1.bin]
        [--compress both|on|off] [--threads 8] [--json OUT]

`run_load(site_dir, clients, seconds, paths, compress)` returns the figures as
a dict for `make bench`.  Only ever targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ["index.html", "models/backbone/model.json", "models/backbone/group1-shard1of1.bin"]
MAX_CLIENTS = 256
MAX_SECONDS = 300
HOST = "127.0.0.1"


def path_kind(path: str) -> str:
    """The figures are grouped by what a browser fetches: page, manifest, shard..."""
    name = path.rsplit("/", 1)[-1]
    if name == "model.json":
        return "model.json"
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    return {"bin": "shard", "htm": "html", "": "html"}.get(ext, ext or "html")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# ------------------------------------------------------------------ the server


def _serve_forever(site_dir: str, compress: bool, threads: int) -> None:
    """Subprocess side: the real app under waitress on 127.0.0.1:0; prints the port."""
    sys.path.insert(0, str(ROOT))
    import waitress

    from tfjs_transfer.serve import create_app

    # "Task queue depth is N" warnings just say every worker is busy, which a
    # load test makes sure of; keep the console for the figures.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = waitress.create_server(create_app(site_dir, compress=compress), host=HOST, port=0,
                                    threads=threads, ident="tfjs-transfer")
    print(server.effective_port, flush=True)
    server.run()


class _ServerProcess:
    def __init__(self, site_dir, compress: bool, threads: int):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_serve", str(site_dir),
               "--compress", "on" if compress else "off", "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"server subprocess did not start (printed {line!r})")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()


# ------------------------------------------------------------------ the clients


def _fetch(conn: http.client.HTTPConnection, path: str):
    conn.request("GET", "/" + path, headers={"Accept-Encoding": "gzip", "Connection": "keep-alive"})
    response = conn.getresponse()
    body = response.read()
    return response, body


def _check_bodies(port: int, site_dir: Path, paths: list[str]) -> dict:
    """One request per path, outside the timed window: correctness + cold latency."""
    cold = {}
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        for path in paths:
            t0 = time.perf_counter()
            response, body = _fetch(conn, path)
            cold[path] = (time.perf_counter() - t0) * 1000
            if response.status != 200:
                raise RuntimeError(f"/{path}: HTTP {response.status}")
            encoding = response.getheader("Content-Encoding") or "identity"
            data = gzip.decompress(body) if encoding == "gzip" else body
            if data != (site_dir / path).read_bytes():
                raise RuntimeError(f"/{path}: body differs from the file")
    finally:
        conn.close()
    return cold


def _client(port: int, paths: list[str], offset: int, window: list, stats: dict, lock: threading.Lock,
            start: threading.Barrier) -> None:
    local = {p: {"lat": [], "bytes": 0, "errors": 0, "encoding": set()} for p in paths}
    error_samples = []
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    i = offset
    start.wait()
    deadline = window[1]
    while time.perf_counter() < deadline:
        path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            response, body = _fetch(conn, path)
            elapsed = time.perf_counter() - t0
            length = response.getheader("Content-Length")
            if response.status != 200 or (length is not None and int(length) != len(body)):
                raise RuntimeError(f"HTTP {response.status}, {len(body)} of {length} bytes")
            entry = local[path]
            entry["lat"].append(elapsed)
            entry["bytes"] += len(body)
            entry["encoding"].add(response.getheader("Content-Encoding") or "identity")
        except Exception as exc:  # noqa: BLE001 - every failure is a counted error
            local[path]["errors"] += 1
            if len(error_samples) < 3:
                error_samples.append(f"/{path}: {type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.close()
    with lock:
        for path, entry in local.items():
            agg = stats["paths"][path]
            agg["lat"].extend(entry["lat"])
            agg["bytes"] += entry["bytes"]
            agg["errors"] += entry["errors"]
            agg["encoding"] |= entry["encoding"]
        stats["error_samples"].extend(error_samples[: max(0, 10 - len(stats["error_samples"]))])


def _summary(latencies: list[float], n_bytes: int, errors: int, elapsed: float) -> dict:
    lat = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(lat),
        "errors": errors,
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50), 2) if lat else None,
        "p90_ms": round(percentile(lat, 90), 2) if lat else None,
        "p99_ms": round(percentile(lat, 99), 2) if lat else None,
        "max_ms": round(lat[-1], 2) if lat else None,
        "bytes": n_bytes,
        "mb_per_s": round(n_bytes / elapsed / 1e6, 2),
    }


def run_load(site_dir, clients: int = 32, seconds: float = 10, paths=None, compress: bool = True,
             threads: int = 8) -> dict:
    """Serve `site_dir` from a subprocess and load it from `clients` keep-alive threads
    for `seconds`; return requests/s, latency percentiles, bytes/s and errors, overall
    and per path kind (html, model.json, shard, ...)."""
    site_dir = Path(site_dir)
    paths = [p.strip().lstrip("/") for p in (paths or DEFAULT_PATHS) if p.strip()]
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be 1..{MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}]")
    if not (site_dir / "index.html").is_file():
        raise FileNotFoundError(f"{site_dir} has no index.html, so the server would refuse it "
                                "(for a models-only folder, load a copy with an index.html added)")
    missing = [p for p in paths if not (site_dir / p).is_file()]
    if missing:
        raise FileNotFoundError(f"not in {site_dir}: {', '.join(missing)}")

    machine_before = _machine_load()
    children0, self0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    server = _ServerProcess(site_dir, compress, threads)
    try:
        cold = _check_bodies(server.port, site_dir, paths)
        stats = {"paths": {p: {"lat": [], "bytes": 0, "errors": 0, "encoding": set()} for p in paths},
                 "error_samples": []}
        lock = threading.Lock()
        window = [0.0, 0.0]  # (start, deadline), fixed once every client thread is ready

        def open_window():
            now = time.perf_counter()
            window[:] = [now, now + seconds]

        start = threading.Barrier(clients + 1, action=open_window)
        workers = []
        for n in range(clients):
            t = threading.Thread(target=_client, daemon=True,
                                 args=(server.port, paths, n, window, stats, lock, start))
            t.start()
            workers.append(t)
        start.wait()
        for t in workers:
            t.join(timeout=seconds + 60)
        elapsed = time.perf_counter() - window[0]
        hung = sum(t.is_alive() for t in workers)
    finally:
        server.stop()
    children1, self1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    client_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)

    by_path, by_kind = {}, {}
    kinds: dict[str, dict] = {}
    for path, entry in stats["paths"].items():
        by_path[path] = _summary(entry["lat"], entry["bytes"], entry["errors"], elapsed)
        by_path[path]["encoding"] = "/".join(sorted(entry["encoding"])) or None
        by_path[path]["cold_ms"] = round(cold[path], 2)
        by_path[path]["file_bytes"] = (site_dir / path).stat().st_size
        k = kinds.setdefault(path_kind(path), {"lat": [], "bytes": 0, "errors": 0})
        k["lat"] += entry["lat"]
        k["bytes"] += entry["bytes"]
        k["errors"] += entry["errors"]
    for kind, k in kinds.items():
        by_kind[kind] = _summary(k["lat"], k["bytes"], k["errors"], elapsed)
    all_lat = [x for e in stats["paths"].values() for x in e["lat"]]
    total = _summary(all_lat, sum(e["bytes"] for e in stats["paths"].values()),
                     sum(e["errors"] for e in stats["paths"].values()) + hung, elapsed)
    n = max(1, total["requests"])
    total["server_cpu_s"] = round(server_cpu, 2)  # whole server lifetime, incl. start-up and warm-up
    total["server_cpu_ms_per_request"] = round(server_cpu * 1000 / n, 3)
    total["client_cpu_s"] = round(client_cpu, 2)
    return {
        "config": {"clients": clients, "seconds": seconds, "paths": paths, "compress": compress,
                   "server_threads": threads, "cpus": os.cpu_count(), "host": HOST,
                   "python": sys.version.split()[0]},
        "elapsed_s": round(elapsed, 3),
        "total": total,
        "by_kind": by_kind,
        "by_path": by_path,
        "error_samples": stats["error_samples"],
        # This machine may be shared: other work competing for the 2 cores
        # inflates latency, so say how busy it was.
        "machine": {"before": machine_before, "after": _machine_load()},
    }


def _machine_load() -> dict:
    info = {"loadavg_1m": round(os.getloadavg()[0], 2)}
    try:  # Linux pressure stall information: % of time runnable tasks waited for a CPU
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        info["cpu_pressure_avg10"] = float(line.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return info


# ------------------------------------------------------------------ the CLI


def _print(result: dict) -> None:
    cfg, total = result["config"], result["total"]
    print(f"\ncompress={'on' if cfg['compress'] else 'off'}  clients={cfg['clients']}  "
          f"server threads={cfg['server_threads']}  {result['elapsed_s']:.1f}s  cpus={cfg['cpus']}")
    print(f"  total: {total['requests']} requests, {total['rps']:.0f} req/s, {total['mb_per_s']:.1f} MB/s, "
          f"p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms, errors {total['errors']}")
    print(f"  server CPU {total['server_cpu_ms_per_request']:.2f} ms/request, client CPU {total['client_cpu_s']} s; "
          f"machine before {result['machine']['before']}, after {result['machine']['after']}")
    print(f"  {'kind':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'MB/s':>8}{'errors':>8}")
    for kind, s in result["by_kind"].items():
        print(f"  {kind:<12}{s['rps']:>9.0f}{s['p50_ms'] or 0:>9.2f}{s['p99_ms'] or 0:>9.2f}"
              f"{s['max_ms'] or 0:>9.2f}{s['mb_per_s']:>8.1f}{s['errors']:>8}")
    for path, s in result["by_path"].items():
        print(f"    /{path}: {s['file_bytes']} B on disk, sent as {s['encoding']}, "
              f"{s['bytes'] // max(1, s['requests'])} B/response, cold {s['cold_ms']} ms")
    for sample in result["error_samples"]:
        print(f"  error: {sample}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS))
    parser.add_argument("--compress", choices=["both", "on", "off"], default="both")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._serve:
        _serve_forever(str(args.site), args.compress != "off", args.threads)
        return 0

    modes = {"both": [False, True], "on": [True], "off": [False]}[args.compress]
    results = []
    for compress in modes:
        result = run_load(args.site, clients=args.clients, seconds=args.seconds,
                          paths=args.paths.split(","), compress=compress, threads=args.threads)
        _print(result)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps({"runs": results}, indent=1))
        print(f"\nwrote {args.json}")
    return 1 if any(r["total"]["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
