"""Checks the whole seed chain against an independent implementation: every DICOM of a phantom export is
read with pydicom (MONOCHROME1, 12 bits, LOG asserted), put through the seed formula in numpy (clip to the
window, z = -ln((1 + x) / 2^B), c = clip(z / 2.5, 0, 1)) and compared with the PNG `cxr dataset import
--format seed` wrote. Prints the largest difference in grey levels (0 expected).
Usage: $V/bin/python tools/reference/dataset_phantom_chain_check.py <export dir> <import out dir>"""
import json
import sys
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

root, out = Path(sys.argv[1]), Path(sys.argv[2])
coco = json.loads((out / "annotations.json").read_text())
worst = 0.0
for image in coco["images"]:
    ds = pydicom.dcmread(root / image["source_path"])
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.PixelIntensityRelationship == "LOG"
    bits = int(ds.BitsStored)
    x = ds.pixel_array.astype(np.float64)
    wc, ww = float(ds.WindowCenter), float(ds.WindowWidth)
    x = np.clip(x, wc - ww / 2, wc + ww / 2)
    c = np.clip(-np.log((1 + x) / 2**bits) / 2.5, 0, 1)
    png = np.asarray(Image.open(out / image["file_name"])).astype(np.float64)
    assert png.shape == c.shape, (image["file_name"], png.shape, c.shape)
    worst = max(worst, float(np.abs(np.round(c * 255) - png).max()))
print(f"{len(coco['images'])} DICOMs read by pydicom; seed formula (numpy) vs imported PNG: max |diff| = {worst} grey levels")
