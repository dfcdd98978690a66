"""With vs without transfer: the same data, architecture, recipe and budget, trained once
from ImageNet weights and once from random weights, side by side.

Both runs are ordinary builds with K-fold cross-validation, so the figures are the
held-out accuracy of exactly what `build` ships.
"""

from __future__ import annotations

import json
from pathlib import Path

from .build import BuildConfig, build
from .evaluate import plot_history


def compare(data: Path, weights: str, out: Path, *, recipe: str = "default", folds: int = 5,
            backbone: str | None = None, web_dist: str | None = None, json_out: bool = False, seed: int = 0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, w in (("transfer", weights), ("random init", "none")):
        cfg = BuildConfig(data=data, weights=w, out=out / name.replace(" ", "-"), backbone=backbone,
                          recipe=recipe, cv_folds=folds, seed=seed, verbose=0, cache_dir=None if w == "none" else
                          BuildConfig.__dataclass_fields__["cache_dir"].default_factory())
        if web_dist:
            cfg.web_dist = Path(web_dist)
        if backbone is None and w == "none":
            cfg.backbone = rows["transfer"]["backbone"]
        m = build(cfg)
        cv = m["training"]["cross_validation"]
        rows[name] = {"weights": w, "backbone": m["backbone"]["name"], "accuracy_mean": cv["accuracy_mean"],
                      "accuracy_std": cv["accuracy_std"], "per_fold": cv["per_fold"],
                      "seconds": m["timings"]["total_s"]}
        plot_history(m["training"]["history"], out / f"curves-{name.replace(' ', '-')}.png",
                     title=f"{name}: {m['backbone']['name']}, recipe {recipe}")
    result = {"data": str(data), "recipe": recipe, "folds": folds, "runs": rows}
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    if json_out:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'run':12} {'weights':40} {'accuracy (' + str(folds) + '-fold)':>22} {'time':>8}")
        for name, r in rows.items():
            print(f"{name:12} {Path(r['weights']).name:40} {r['accuracy_mean']:>14.1%} ± {r['accuracy_std']:.1%} "
                  f"{r['seconds']:>7.1f}s")
        print(f"curves and compare.json in {out}")
    return result
