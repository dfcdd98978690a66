"""tfjs-transfer: images on disk -> transfer-learned classifier -> static TF.js site.

The modules follow the data flow, one step each:
dataset -> preprocess -> backbones -> features -> heads -> convert -> site -> serve,
with build.py telling the story top-down and cli.py only parsing arguments.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter hides the build's own output; errors still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
