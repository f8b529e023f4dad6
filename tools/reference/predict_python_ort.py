"""Runs exported fedcxr ONNX graphs in Python's onnxruntime, for the cross-check against onnxruntime-node.

Usage: python tools/reference/predict_python_ort.py <dir>

<dir>/manifest.json lists the runs:
  {"runs": [{"name": "features", "model": "features.onnx",
             "inputs": {"images": {"file": "images.bin", "dtype": "float32", "shape": [1, 3, 64, 96]}}}]}
Input files are raw little-endian arrays. For each run every output is written to <dir>/<name>.<output>.py.bin
(little-endian float32), and <dir>/python_outputs.json records the onnxruntime version and each output's
shape. Sessions use onnxruntime's defaults (CPU provider, all graph optimizations), like OnnxFasterRcnn.load.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort

DTYPES = {"float32": "<f4", "int64": "<i8"}


def main(folder: str) -> None:
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    result = {"onnxruntime": ort.__version__, "runs": {}}
    for run in manifest["runs"]:
        session = ort.InferenceSession(
            os.path.join(folder, run["model"]), options, providers=["CPUExecutionProvider"]
        )
        feeds = {}
        for name, spec in run["inputs"].items():
            data = np.fromfile(os.path.join(folder, spec["file"]), dtype=DTYPES[spec["dtype"]])
            feeds[name] = data.reshape(spec["shape"])
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, feeds)
        shapes = {}
        for name, value in zip(names, values):
            np.ascontiguousarray(value, dtype="<f4").tofile(os.path.join(folder, f"{run['name']}.{name}.py.bin"))
            shapes[name] = list(value.shape)
        result["runs"][run["name"]] = shapes
    with open(os.path.join(folder, "python_outputs.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
