"""The `tm` export: a site's backbone and head as one Teachable Machine image model.

Teachable Machine's layout is model.json + weights.bin + metadata.json. Its library
(`@teachablemachine/image`, on the TF.js 1.3.1 it pins) and ml5.js 1.x
(`ml5.imageClassifier(url of model.json)`, which reads the labels from metadata.json
beside it) load such a folder as it is and feed the model a 224x224x3 image scaled by
`x / 127 - 1`. So the export is the site's backbone and head joined into one layers
model with that input; a backbone that wants another size (InceptionV3's 299) or other
scaling (VGG16's caffe mean) would be fed the wrong image, and is refused.

The weights are written by the tensorflowjs converter, float32 in one shard (TF.js
1.3.1 reads nothing else reliably), from the site's Keras models whatever the site's
quantization. Only the topology JSON is adapted for TF.js 1.3.1 (see `_for_tfjs_1_3`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, manifest
from .errors import UserError
from .outdir import check_new_or_empty, staged

IMAGE_SIZE = 224  # both libraries crop/resize every image to this square
TFJS_VERSION = "1.3.1"  # the TF.js @teachablemachine/image pins (a peer dependency)
TM_PACKAGE = ("@teachablemachine/image", "0.8.5")
WEIGHTS_FILE = "weights.bin"
FILES = ("model.json", WEIGHTS_FILE, "metadata.json", "labels.txt", "README.md")


def export_tm(site: Path, out_dir: Path) -> dict:
    """Writes the site's merged model as a Teachable Machine export into out_dir (new or
    empty); returns what was written. The folder appears complete or not at all."""
    from .predict import Predictor

    site, out_dir = Path(site), Path(out_dir)
    m = manifest.load(site)
    _check_expressible(site, m)
    check_new_or_empty(out_dir)
    predictor = Predictor(site, source="auto")
    model = merged_model(predictor.backbone, predictor.head)
    with staged(out_dir) as staging:
        _write(model, m, site, staging)
    files = {name: (out_dir / name).stat().st_size for name in FILES}
    return {"format": "tm", "out": str(out_dir), "files": files, "bytes": sum(files.values()),
            "labels": m["labels"], "source": predictor.source}


def _check_expressible(site: Path, m: dict) -> None:
    """Refuses a site whose input the two libraries cannot produce."""
    p = m["preprocessing"]
    name = m.get("backbone", {}).get("name", "this backbone")
    where = f"{site / manifest.FILENAME}"
    if (p["height"], p["width"]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise UserError(f"{where}: cannot export {name} as a Teachable Machine model: it takes "
                        f"{p['height']}x{p['width']} images, and Teachable Machine and ml5 always feed "
                        f"{IMAGE_SIZE}x{IMAGE_SIZE}")
    if p["channel_order"] != "RGB" or any(p["mean"]) or abs(p["scale"] - 1 / 127.5) > 1e-9 or p["offset"] != -1.0:
        raise UserError(f"{where}: cannot export {name} as a Teachable Machine model: it expects "
                        f"{p['channel_order']} pixels scaled as (x - {list(p['mean'])}) * {p['scale']:.6g} "
                        f"+ {p['offset']:g}, and Teachable Machine and ml5 always feed RGB scaled to [-1, 1]")


def merged_model(backbone, head):
    """One model, image in, probabilities out: the two site models nested as they are (as
    Teachable Machine nests its own), so their layers and weights keep their names."""
    import tf_keras as keras

    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    return keras.Model(image, head(backbone(image)), name="tfjs_transfer_tm")


def _write(model, m: dict, site: Path, folder: Path) -> None:
    from .convert import to_tfjs

    converted = folder / "converted"
    to_tfjs(model, converted, quantize=None, shard_bytes=1 << 40)
    model_json = json.loads((converted / "model.json").read_text(encoding="utf-8"))
    (shard,) = model_json["weightsManifest"][0]["paths"]  # one shard: TM's layout names it weights.bin
    model_json["weightsManifest"][0]["paths"] = [WEIGHTS_FILE]
    model_json["modelTopology"] = _for_tfjs_1_3(model_json["modelTopology"])
    (converted / shard).rename(folder / WEIGHTS_FILE)
    manifest.write_json(folder / "model.json", model_json)
    shutil.rmtree(converted)
    manifest.write_json(folder / "metadata.json", metadata(m))
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in m["labels"]), encoding="utf-8")
    (folder / "README.md").write_text(readme(m, site), encoding="utf-8")


def _for_tfjs_1_3(node):
    """The topology as TF.js 1.3.1 reads it: Keras 2.13+ calls a functional model
    "Functional", which 1.3.1 does not know; its name there is "Model"."""
    if isinstance(node, dict):
        node = {k: _for_tfjs_1_3(v) for k, v in node.items()}
        if node.get("class_name") == "Functional":
            node["class_name"] = "Model"
        return node
    if isinstance(node, list):
        return [_for_tfjs_1_3(v) for v in node]
    return node


def metadata(m: dict) -> dict:
    """metadata.json with Teachable Machine's fields; ml5 reads `labels` from it."""
    return {
        "tfjsVersion": TFJS_VERSION,
        "tmVersion": f"tfjs-transfer {__version__}",
        "packageVersion": TM_PACKAGE[1],
        "packageName": TM_PACKAGE[0],
        "modelName": f"tfjs-transfer {m['backbone']['name']} {m['head']['recipe']}",
        "timeStamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "labels": list(m["labels"]),
        "userMetadata": {"fingerprint": m.get("fingerprint"), "backbone": m["backbone"]["name"],
                         "recipe": m["head"]["recipe"]},
        "imageSize": IMAGE_SIZE,
    }


def readme(m: dict, site: Path) -> str:
    labels = ", ".join(m["labels"])
    return f"""# Teachable Machine / ml5 image model

Exported by tfjs-transfer {__version__} from `{site}` ({m['backbone']['name']} backbone,
`{m['head']['recipe']}` head): one TF.js layers model, the backbone and head joined.

- files: `model.json` + `{WEIGHTS_FILE}` (float32) + `metadata.json` (Teachable Machine's layout), `labels.txt`
- input: a 224x224x3 RGB image scaled to [-1, 1] (`x / 127 - 1` as both libraries do it;
  the site's own page uses `x / 127.5 - 1`)
- output: {len(m['labels'])} probabilities, in the order of `labels` in metadata.json: {labels}
- preprocessing: both libraries do it themselves; `@teachablemachine/image` crops the centre
  square and resizes it with a canvas, ml5 stretches the whole image to 224x224 (bilinear)

Teachable Machine (`@teachablemachine/image` 0.8.5 on `@tensorflow/tfjs` 1.3.1):

```js
const model = await tmImage.load("model.json", "metadata.json");
const predictions = await model.predict(imageElement);  // [{{className, probability}}, ...]
```

ml5.js 1.x (reads the labels from metadata.json beside model.json):

```js
const classifier = await ml5.imageClassifier("https://example.org/my-model/model.json");
const results = await classifier.classify(imageElement);  // [{{label, confidence}}, ...] best first
```
"""
