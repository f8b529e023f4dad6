"""Reference fixture for packages/dicom: what pydicom + numpy make of real files.

Writes tools/reference/fixtures/dicom/reference.json with
- rsna: for a fixed sample of RSNA pneumonia DICOMs, pydicom's stored pixel_array (shape, min, max, sum,
  sha256 of the int32 little-endian C-order bytes), the convention of dicom-samples/EXPECTED.json;
- pydicom_test_files: the same statistics for every frame of some of pydicom's own test files;
- seed: for chest CRs, the seed normalization computed in float64 with numpy
  (clip to [WC-WW/2, WC+WW/2], z = -ln((1+x)/2^B), c = clip(z/2.5, 0, 1)), cast to float32: mean, sum and
  about 2000 values at a fixed stride, to prove the TypeScript preset against it.

Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/dicom_rsna_hashes.py
"""

import hashlib
import json
import os
import random
import sys

import numpy as np
import pydicom

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data")
RSNA = os.path.join(DATA, "rsna-pneumonia", "dicom")
SAMPLES = os.path.join(DATA, "dicom-samples")
OUT = os.path.join(ROOT, "tools", "reference", "fixtures", "dicom", "reference.json")


PYDICOM_TEST_FILES = [
    "image_dfl.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "rtdose_rle.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "693_J2KI.dcm",
    "liver_1frame.dcm",
]


def stored_stats(arr):
    a = np.ascontiguousarray(arr, dtype="<i4")
    return {
        "shape": list(arr.shape),
        "min": int(a.min()),
        "max": int(a.max()),
        "sum": int(a.astype(np.int64).sum()),
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
    }


def seed(arr, wc, ww, bits):
    x = np.clip(arr.astype(np.float64), wc - ww / 2, wc + ww / 2)
    x = np.maximum(x, 0)
    z = -np.log((1 + x) / 2.0**bits)
    return np.clip((z - 0.0) / (2.5 - 0.0), 0, 1).astype(np.float32)


def main():
    names = sorted(n for n in os.listdir(RSNA) if n.endswith(".dcm"))
    picked = random.Random(2026).sample(names, 12)
    rsna = {}
    for name in picked:
        ds = pydicom.dcmread(os.path.join(RSNA, name))
        rsna[name] = stored_stats(ds.pixel_array)
    seeds = {}
    for name in ["CR-MONO1-10-chest.dcm", "RG1_J2KI.dcm"]:
        ds = pydicom.dcmread(os.path.join(SAMPLES, name), force=True)
        if "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        arr = ds.pixel_array
        assert ds.PhotometricInterpretation == "MONOCHROME1"
        c = seed(arr, float(ds.WindowCenter), float(ds.WindowWidth), int(ds.BitsStored))
        flat = c.reshape(-1)
        stride = -(-flat.size // 2000)
        seeds[name] = {
            "mean": float(flat.astype(np.float64).mean()),
            "sum": float(flat.astype(np.float64).sum()),
            "stride": stride,
            "values": [float(v) for v in flat[::stride]],
        }
    # pydicom's own test files (shipped inside the pydicom wheel): multi-frame RLE up to 32 bits, deflated,
    # JPEG without colour transform, JPEG 2000 with a pixel-representation mismatch. Every frame is hashed.
    test_files = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    extra = {}
    for name in PYDICOM_TEST_FILES:
        ds = pydicom.dcmread(os.path.join(test_files, name))
        arr = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        per_frame = [arr] if frames == 1 else [arr[i] for i in range(frames)]
        extra[name] = {"transfer_syntax": str(ds.file_meta.TransferSyntaxUID), "frames": [stored_stats(f) for f in per_frame]}
    json.dump(
        {"generator": "tools/reference/dicom_rsna_hashes.py", "pydicom": pydicom.__version__, "numpy": np.__version__,
         "rsna": rsna, "seed": seeds, "pydicom_test_files": extra},
        open(OUT, "w"),
        indent=1,
    )
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
