"""pydicom + numpy doing the same work as bench/dicom/bench.ts, for the speed ratio.

Per file: read the file, decode the stored pixels (pydicom pixel_array), apply the `seed` preset and the
`window` preset with the semantics documented in packages/dicom/src/normalize.ts (vectorised numpy, float32
output), and resize each result so the longer side is SIZE (aspect kept, letterboxed to SIZE x SIZE) with
Pillow's BILINEAR on float images. Prints one JSON line: {"images", "seconds", "cpuSeconds", "checksum"}.

Usage: python pydicom_reference.py SIZE FILE...
"""

import json
import sys
import time

import numpy as np
import pydicom
from PIL import Image


def seed(stored, ds):
    bits = int(ds.BitsStored)
    top = 2.0**bits - 1
    mono1 = ds.PhotometricInterpretation == "MONOCHROME1"
    if "WindowCenter" in ds and "WindowWidth" in ds:
        wc = float(ds.WindowCenter if ds["WindowCenter"].VM == 1 else ds.WindowCenter[0])
        ww = float(ds.WindowWidth if ds["WindowWidth"].VM == 1 else ds.WindowWidth[0])
        low, high = wc - ww / 2, wc + ww / 2
    else:
        low, high = 0.0, top
    x = stored.astype(np.float64)
    if not mono1:
        x = top - x
        low, high = top - high, top - low
    low = max(low, 0.0)
    high = max(high, low)
    x = np.clip(x, low, high)
    z = -np.log((1 + x) / 2.0**bits)
    return np.clip(z / 2.5, 0, 1).astype(np.float32)


def window(stored, ds):
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    v = stored.astype(np.float64) * slope + intercept
    if "WindowCenter" in ds and "WindowWidth" in ds:
        c = float(ds.WindowCenter if ds["WindowCenter"].VM == 1 else ds.WindowCenter[0]) - 0.5
        w = float(ds.WindowWidth if ds["WindowWidth"].VM == 1 else ds.WindowWidth[0]) - 1
        out = np.clip((v - c) / w + 0.5, 0, 1)
        out[v <= c - w / 2] = 0
        out[v > c + w / 2] = 1
    else:
        lo, hi = v.min(), v.max()
        out = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1 - out
    return out.astype(np.float32)


def resize(img, size):
    h, w = img.shape
    scale = size / max(w, h)
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(img, mode="F").resize((cw, ch), Image.BILINEAR))
    out = np.zeros((size, size), np.float32)
    out[:ch, :cw] = small
    return out


def main():
    size = int(sys.argv[1])
    files = sys.argv[2:]
    checksum = 0.0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for path in files:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
        for preset in (seed, window):
            checksum += float(resize(preset(stored, ds), size).mean())
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(json.dumps({"images": len(files), "seconds": seconds, "cpuSeconds": cpu, "checksum": checksum}))


if __name__ == "__main__":
    main()
