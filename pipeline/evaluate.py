"""Score a built site on labelled images: accuracy, per-class P/R/F1, confusion matrix.

`evaluate(site, data)` (a site, or a Teachable Machine export folder) uses the data's test/ split when it has one, else every image.
`write_report` adds the confusion matrix and training curves as PNG (matplotlib) and
the worst-predicted images, beside a JSON copy of the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import dataset
from .errors import UserError
from .predict import Predictor


def metrics_from(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    n = len(labels)
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, label in enumerate(labels):
        tp = cm[i, i]
        predicted, actual = cm[:, i].sum(), cm[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                            "support": int(actual)}
    return {"accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
            "count": int(len(y_true)), "labels": labels, "per_class": per_class,
            "confusion_matrix": cm.tolist()}


def evaluate(site_dir: str | Path, data: str | Path, worst: int = 10, source: str = "auto") -> dict:
    """The report on `data`; `source` as Predictor's (auto: the Keras copies if present)."""
    predictor = Predictor(site_dir, source)
    ds = dataset.scan(data)
    samples = ds.split("test") or ds.samples
    unknown = sorted({s.label for s in samples} - set(predictor.labels))
    if unknown:
        raise UserError(f"{data}: classes {', '.join(unknown)} are not among the site's labels "
                        f"({', '.join(predictor.labels)})")
    results = predictor.predict([s.path for s in samples], top_k=len(predictor.labels))
    y_true, y_pred, scored, skipped = [], [], [], []
    for s, r in zip(samples, results):
        if "error" in r:
            skipped.append({"path": str(s.path), "reason": r["error"]})
            continue
        probs = {t["label"]: t["probability"] for t in r["top"]}
        y_true.append(predictor.labels.index(s.label))
        y_pred.append(predictor.labels.index(r["top"][0]["label"]))
        scored.append({"image": str(s.path), "label": s.label, "predicted": r["top"][0]["label"],
                       "probability_of_label": probs[s.label]})
    report = metrics_from(np.array(y_true, int), np.array(y_pred, int), predictor.labels)
    report["split"] = "test" if ds.split("test") else "all"
    report["models"] = predictor.source
    report["worst"] = sorted(scored, key=lambda d: d["probability_of_label"])[:worst]
    report["skipped"] = skipped + [{"path": str(s.path), "reason": s.reason} for s in ds.skipped]
    training = (predictor.manifest or {}).get("training", {})  # a TM export has no record of its training
    report["training"] = training.get("metrics", {})
    report["history"] = training.get("history", {})
    return report


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """confusion_matrix.png, training_curves.png (when the manifest has history), report.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    labels, cm = report["labels"], np.array(report["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.1%} on {report['count']} images")
    fig.tight_layout()
    written.append(out / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    history = report.get("history") or {}
    if history.get("loss"):
        written.append(out / "training_curves.png")
        plot_history(history, written[-1])
    written.append(out / "report.json")
    written[-1].write_text(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2) + "\n")
    return written


def plot_history(history: dict, path: Path, title: str = "head training") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
