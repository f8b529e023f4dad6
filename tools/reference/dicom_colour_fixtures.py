"""Colour and big-endian DICOM fixtures for packages/dicom (issue 16): tiny synthetic files written with pydicom
and what pydicom's default ``ds.pixel_array`` makes of them (YBR_FULL / YBR_FULL_422 converted to RGB).

Writes tools/reference/fixtures/dicom/colour/
- <name>.dcm: one file per combination of
  RGB 8/16 bits, YBR_FULL 8 bits, YBR_FULL_422 8 bits (planar configuration 0 and 1; 7 columns x 5 rows,
  6 x 4 and, for 422, 7 x 4), MONOCHROME1/2 8/16 bits (and signed 12-of-16 bits), in
  Implicit VR Little Endian (ile), Explicit VR Little Endian (ele) and Explicit VR Big Endian (ebe); 8-bit big
  endian data both as OB (bytes as stored) and as OW (16-bit words: byte pairs swapped, pad byte displaced);
  some with 2 frames (odd-length frames of OW data: frame 1 starts mid-word). Pixel values are deterministic
  pseudo-random over the full range (16-bit values above 255, so byte order matters);
- expected.json: for each file, pydicom's pixel_array per frame (shape, min, max, sum, sha256 of the int32
  little-endian C-order values, as tools/reference/fixtures/dicom/reference.json, and the first values), or the
  error pydicom raises; and pydicom's YBR_FULL -> RGB conversion of all 2^24 triples (sha256, and the triples
  whose float32 sums land on a rounding boundary, where the order of operations decides the result).

Every file is also checked here: pydicom must decode it to the pixels the generator meant (the standard's byte
layout), so the fixtures test the encoding, not only agreement with pydicom.

Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/dicom_colour_fixtures.py
"""

import hashlib
import json
import os
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import pixel_array as frame_array
from pydicom.pixels.processing import _convert_YBR_FULL_to_RGB
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_rsna_hashes import stored_stats  # the script's folder is on sys.path when it runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tools", "reference", "fixtures", "dicom", "colour")

SYNTAXES = {"ile": ImplicitVRLittleEndian, "ele": ExplicitVRLittleEndian, "ebe": ExplicitVRBigEndian}
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
TAGS = {"MONOCHROME1": "mono1", "MONOCHROME2": "mono2", "RGB": "rgb", "YBR_FULL": "ybr", "YBR_FULL_422": "ybr422"}
HEAD = 12  # values recorded verbatim per frame (for readable failures)


def stats(arr):
    """dicom_rsna_hashes.py's summary of stored values (same convention as reference.json), plus the first few."""
    a = np.ascontiguousarray(arr, dtype="<i4")
    return {**stored_stats(arr), "head": [int(v) for v in a.reshape(-1)[:HEAD]]}


def expand_422(raw, pixels):
    """Y1 Y2 Cb Cr per pair of pixels -> Y Cb Cr per pixel (PS3.3 C.7.6.3.1.2)."""
    out = np.empty((pixels, 3), dtype=np.uint8)
    quads = raw.reshape(-1, 4)
    out[0::2, 0], out[1::2, 0] = quads[:, 0], quads[:, 1]
    out[0::2, 1], out[1::2, 1] = quads[:, 2], quads[:, 2]
    out[0::2, 2], out[1::2, 2] = quads[:, 3], quads[:, 3]
    return out


def encode(stored, bits, ts, vr):
    """Stored sample sequence (numpy, in file order) -> Pixel Data bytes as the standard lays them out."""
    if bits == 16:
        kind = "i2" if stored.dtype.kind == "i" else "u2"
        return stored.astype((">" if ts == "ebe" else "<") + kind).tobytes()
    data = stored.astype(np.uint8).tobytes()
    if ts == "ebe" and vr == "OW":
        # OW in big endian: each 16-bit word is stored most significant byte first. The word holding sample 2k is
        # (sample 2k) | (sample 2k+1) << 8, so the pair is stored swapped; an odd length's pad byte comes first.
        padded = data + b"\0" * (len(data) % 2)
        data = np.frombuffer(padded, dtype="<u2").astype(">u2").tobytes()
    return data


def write(name, *, rows, cols, pi, bits, planar, ts, vr, frames=1, signed=False, bits_stored=None):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    spp = 1 if pi.startswith("MONOCHROME") else 3
    pixels = rows * cols
    bits_stored = bits_stored or bits
    if signed:
        values = rng.integers(-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1), size=(frames, pixels * spp))
        values = values.astype(np.int16)
    else:
        values = rng.integers(0, 2**bits_stored, size=(frames, pixels * spp), dtype=np.int64)
    if pi == "YBR_FULL_422":
        # Native 422: two samples per pixel, Y1 Y2 Cb Cr for each pair of pixels.
        raw = rng.integers(0, 256, size=(frames, 2 * pixels), dtype=np.int64).astype(np.uint8)
        stored = raw.reshape(-1)
        meant = None  # an odd pixel count has no 422 layout (pydicom refuses it)
        if pixels % 2 == 0:
            meant = np.stack([expand_422(raw[f], pixels) for f in range(frames)]).reshape(frames, rows, cols, 3)
            meant = _convert_YBR_FULL_to_RGB(meant)
    elif spp == 3:
        interleaved = values.reshape(frames, rows, cols, 3)
        stored = (interleaved.transpose(0, 3, 1, 2) if planar else interleaved).reshape(-1)
        meant = interleaved.astype(np.uint8) if bits == 8 else interleaved
        if pi == "YBR_FULL":
            meant = _convert_YBR_FULL_to_RGB(meant.astype(np.uint8)) if bits == 8 else None
    else:
        stored = values.reshape(-1)
        meant = values.reshape(frames, rows, cols)

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = SYNTAXES[ts]
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = "2.25." + str(zlib.crc32(name.encode()))
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = pi
    if spp == 3:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.add_new(0x7FE00010, vr, encode(stored, bits, ts, vr))
    path = os.path.join(OUT, name + ".dcm")
    ds.save_as(path, enforce_file_format=True)

    entry = {
        "transfer_syntax": str(SYNTAXES[ts]),
        "photometric": pi,
        "bits_allocated": bits,
        "planar_configuration": planar if spp == 3 else None,
        "pixel_vr": vr,
        "rows": rows,
        "columns": cols,
    }
    back = pydicom.dcmread(path)
    try:
        arr = back.pixel_array
    except Exception as error:  # noqa: BLE001 - the error itself is the reference
        entry["pydicom_error"] = f"{type(error).__name__}: {error}"
        return entry
    arr = arr.reshape(frames, *arr.shape[-3 if spp == 3 else -2 :])
    # Frame by frame as well (odd-length OW frames start mid-word): the same pixels.
    for index in range(frames):
        assert np.array_equal(frame_array(path, index=index), arr[index]), (name, index)
    # pydicom reads what the generator meant, except 422 with planar configuration 1 (non-conformant: pydicom
    # reads the expanded, pixel-interleaved samples as if they were planes).
    if not (pi == "YBR_FULL_422" and planar == 1):
        assert np.array_equal(arr, meant), name
    entry["frames"] = [stats(arr[index]) for index in range(frames)]
    return entry


def combinations():
    """(name, keyword arguments) for every fixture."""
    out = []

    def add(pi, bits, planar, ts, vr, rows, cols, frames=1, **extra):
        parts = [TAGS[pi], str(bits), ts]
        if bits == 8 and ts == "ebe":
            parts.append(vr.lower())
        if pi not in ("MONOCHROME1", "MONOCHROME2"):
            parts.append(f"planar{planar}")
        if extra.get("signed"):
            parts.append(f"s{extra['bits_stored']}")
        parts.append(f"{cols}x{rows}")
        if frames > 1:
            parts.append(f"f{frames}")
        kwargs = dict(pi=pi, bits=bits, planar=planar, ts=ts, vr=vr, rows=rows, cols=cols, frames=frames)
        out.append(("_".join(parts), {**kwargs, **extra}))

    eight = [("ile", "OB"), ("ele", "OB"), ("ebe", "OB"), ("ebe", "OW")]
    sixteen = [("ile", "OW"), ("ele", "OW"), ("ebe", "OW")]
    sizes = [(5, 7), (4, 6)]  # (rows, columns): 7 x 5 has an odd pixel count
    for planar in (0, 1):
        for rows, cols in sizes:
            for ts, vr in eight:
                add("RGB", 8, planar, ts, vr, rows, cols)
                add("YBR_FULL", 8, planar, ts, vr, rows, cols)
            for ts, vr in sixteen:
                add("RGB", 16, planar, ts, vr, rows, cols)
        for rows, cols in [(4, 6), (4, 7)]:  # 422 pairs pixels: an even count (7 x 4: odd columns, pairs span rows)
            for ts, vr in eight:
                add("YBR_FULL_422", 8, planar, ts, vr, rows, cols)
    for ts, vr in [("ele", "OB"), ("ebe", "OW")]:
        add("YBR_FULL_422", 8, 0, ts, vr, 5, 7)  # an odd pixel count: pydicom cannot expand it
        add("YBR_FULL", 16, 0, ts, "OW", 4, 6)  # pydicom converts 8-bit samples only
    for rows, cols in sizes:
        for ts, vr in eight:
            add("MONOCHROME2", 8, 0, ts, vr, rows, cols)
        for ts, vr in sixteen:
            add("MONOCHROME2", 16, 0, ts, vr, rows, cols)
    for ts, vr in eight:
        add("MONOCHROME1", 8, 0, ts, vr, 5, 7)
    for ts, vr in sixteen:
        add("MONOCHROME1", 16, 0, ts, vr, 5, 7)
    for ts, vr in [("ele", "OW"), ("ebe", "OW")]:
        add("MONOCHROME2", 16, 0, ts, vr, 5, 7, signed=True, bits_stored=12)
    # Two frames of odd length (105 and 35 bytes): the second frame of OW data starts in the middle of a word.
    add("RGB", 8, 0, "ebe", "OW", 5, 7, frames=2)
    add("RGB", 8, 1, "ebe", "OW", 5, 7, frames=2)
    add("YBR_FULL", 8, 0, "ebe", "OW", 5, 7, frames=2)
    add("MONOCHROME2", 8, 0, "ebe", "OW", 5, 7, frames=2)
    add("RGB", 8, 1, "ebe", "OB", 5, 7, frames=2)
    add("RGB", 16, 1, "ebe", "OW", 5, 7, frames=2)
    add("YBR_FULL_422", 8, 0, "ebe", "OW", 4, 7, frames=2)
    return out


def ybr_all():
    """pydicom's YBR_FULL -> RGB of every (Y, Cb, Cr), Y slowest; and the triples where rounding each float32
    product and sum separately (no fused multiply-add) gives another value than pydicom's matmul."""
    v = np.arange(2**24, dtype=np.uint32)
    ybr = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=-1).astype(np.uint8)
    rgb = _convert_YBR_FULL_to_RGB(ybr.reshape(4096, 4096, 3)).reshape(-1, 3)
    y, cb, cr = (ybr[:, i].astype(np.float32) - np.float32(o) for i, o in enumerate((0, 128, 128)))
    gb, gr = np.float32(-0.114 * 1.772 / 0.587), np.float32(-0.299 * 1.402 / 0.587)
    separate = np.stack([y + cr * np.float32(1.402), (y + cb * gb) + cr * gr, y + cb * np.float32(1.772)], axis=-1)
    separate = np.clip(np.floor(separate + np.float32(0.5)), 0, 255).astype(np.uint8)
    differ = np.nonzero((separate != rgb).any(axis=1))[0]
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    return {
        "order": "Y slowest, then Cb, then Cr; RGB bytes",
        "sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
        "boundary": [[*map(int, ybr[i]), *map(int, rgb[i])] for i in differ],
        "blas": blas.get("openblas configuration", blas.get("name", "unknown")),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".dcm"):
            os.remove(os.path.join(OUT, old))
    files = {}
    for name, kwargs in combinations():
        files[name + ".dcm"] = write(name, **kwargs)
    out = {
        "generator": "tools/reference/dicom_colour_fixtures.py",
        "pydicom": pydicom.__version__,
        "numpy": np.__version__,
        "files": files,
        "ybr_full_to_rgb_all": ybr_all(),
    }
    # One line per file (and per boundary triple) keeps the JSON small and its diffs readable.
    lines = ["{"]
    lines += [f" {json.dumps(key)}: {json.dumps(out[key])}," for key in ("generator", "pydicom", "numpy")]
    lines.append(' "files": {')
    lines += [f"  {json.dumps(name)}: {json.dumps(entry)}," for name, entry in files.items()]
    lines[-1] = lines[-1][:-1]
    lines.append(" },")
    ybr = out["ybr_full_to_rgb_all"]
    lines.append(' "ybr_full_to_rgb_all": {')
    lines += [f"  {json.dumps(key)}: {json.dumps(ybr[key])}," for key in ("order", "sha256", "blas")]
    lines.append('  "boundary": [')
    lines += [f"   {json.dumps(triple)}," for triple in ybr["boundary"]]
    lines[-1] = lines[-1][:-1]
    lines += ["  ]", " }", "}"]
    text = "\n".join(lines)
    assert json.loads(text) == out
    with open(os.path.join(OUT, "expected.json"), "w") as handle:
        handle.write(text + "\n")
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    errors = [name for name, entry in files.items() if "pydicom_error" in entry]
    print(f"{len(files)} files ({len(errors)} pydicom cannot decode: {errors}), {size} bytes in {OUT}")


if __name__ == "__main__":
    main()
