"""Writes small PNG/JPEG files with Pillow (libpng/libjpeg) and what Pillow decodes from them, so the
TypeScript raster reader is checked against an independent implementation.
Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/dataset_raster_fixtures.py"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

out = Path(__file__).parent / "fixtures" / "dataset" / "raster"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
h, w = 12, 17
grey8 = rng.integers(0, 256, (h, w), dtype=np.uint8)
grey16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
smooth = (np.add.outer(np.arange(h) * 9, np.arange(w) * 7) % 256).astype(np.uint8)

Image.fromarray(grey8, "L").save(out / "grey8.png")
Image.fromarray(grey16).save(out / "grey16.png")
Image.fromarray(rgb, "RGB").save(out / "rgb8.png")
Image.fromarray(np.dstack([grey8, 255 - grey8]), "LA").save(out / "grey_alpha.png")
Image.fromarray(smooth, "L").save(out / "grey.jpg", quality=95)
Image.fromarray(np.dstack([smooth, smooth, smooth]), "RGB").save(out / "rgb.jpg", quality=95)

def pil(name, mode=None):
    im = Image.open(out / name)
    if mode:
        im = im.convert(mode)
    return np.asarray(im)

expected = {
    "width": w,
    "height": h,
    "grey8.png": pil("grey8.png").flatten().tolist(),
    "grey16.png": np.asarray(Image.open(out / "grey16.png")).astype(np.int64).flatten().tolist(),
    "rgb8.png": pil("rgb8.png").flatten().tolist(),
    # Pillow's own RGB->L uses the same BT.601 weights (rounded): our toGrey must match within 1.
    "rgb8.png:L": pil("rgb8.png", "L").flatten().tolist(),
    "grey_alpha.png": pil("grey_alpha.png").flatten().tolist(),
    "grey.jpg": pil("grey.jpg").flatten().tolist(),
    "grey.jpg:mode": Image.open(out / "grey.jpg").mode,
    "rgb.jpg:L": pil("rgb.jpg", "L").flatten().tolist(),
}
(out / "expected.json").write_text(json.dumps(expected))
print("wrote", sorted(p.name for p in out.iterdir()))
