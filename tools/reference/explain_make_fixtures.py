"""EigenCAM reference fixtures, following pytorch-grad-cam's published definitions.

For Faster R-CNN, pytorch-grad-cam's tutorial targets `model.backbone` with `fasterrcnn_reshape_transform`:
every FPN level is |activation|, resized bilinearly (align_corners=False) to the 'pool' level's size and
concatenated on channels; EigenCAM is then `get_2d_projection`: centre the (H*W, C) matrix on its column
means, project on the first right singular vector (numpy SVD), ReLU, min-max scale, resize to the image.
We record the projection before ReLU (its sign is SVD's arbitrary choice) and the scaled CAM.
Writes tools/reference/fixtures/explain/eigencam.json.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

rng = np.random.default_rng(7)
levels = {"0": (16, 24), "1": (8, 12), "2": (4, 6), "3": (2, 3), "pool": (1, 2)}
channels = 6
features = {k: rng.normal(size=(1, channels, h, w)).astype(np.float32) for k, (h, w) in levels.items()}
# a structured signal so the first component is well separated
for k, (h, w) in levels.items():
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((yy - h * 0.3) / max(h * 0.2, 0.5)) ** 2 + ((xx - w * 0.6) / max(w * 0.2, 0.5)) ** 2))
    features[k][0] += 3 * blob[None] * np.linspace(1, 2, channels)[:, None, None]

target = features["pool"].shape[-2:]
# fasterrcnn_reshape_transform uses the smallest ('pool') level; also record a larger target for a richer test
def reshape(target_size):
    acts = [F.interpolate(torch.abs(torch.from_numpy(v)), target_size, mode="bilinear") for v in features.values()]
    return torch.cat(acts, dim=1).numpy()

def projection(acts):
    a = acts[0].reshape(acts.shape[1], -1).transpose()
    a = a - a.mean(axis=0)
    _, _, vt = np.linalg.svd(a, full_matrices=True)
    return (a @ vt[0, :]).reshape(acts.shape[2:])

def scale(cam, size):
    cam = np.maximum(cam, 0)
    cam = cam - cam.min()
    cam = cam / (1e-7 + cam.max())
    return F.interpolate(torch.from_numpy(cam)[None, None].float(), size, mode="bilinear").numpy()[0, 0]

out = {"levels": {k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in features.items()}, "cases": []}
for target_size in [tuple(target), (8, 12)]:
    acts = reshape(target_size)
    proj = projection(acts)
    out["cases"].append({
        "target": list(target_size),
        "concatenated_sum": float(acts.sum()),
        "projection": proj.ravel().tolist(),
        "cam_32x48": scale(proj, (32, 48)).ravel().tolist(),
    })
path = os.path.join(os.path.dirname(__file__), "fixtures", "explain", "eigencam.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path)
