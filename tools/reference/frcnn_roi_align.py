"""RoIAlign reference (torchvision.ops.roi_align, aligned=False and True, fixed and adaptive sampling):
forward outputs and the gradient of sum(output * weights) with respect to the feature map, by torch autograd.

Writes tools/reference/fixtures/frcnn/roi_align.safetensors (NCHW tensors as torch gives them).
Run: $(bash ../shared/tools/python-reference-env.sh)/bin/python tools/reference/frcnn_roi_align.py
"""
from pathlib import Path

import torch
from safetensors.torch import save_file
from torchvision.ops import roi_align

torch.manual_seed(5)
OUT = Path(__file__).parent / "fixtures" / "frcnn" / "roi_align.safetensors"

features = torch.randn(2, 3, 10, 12, dtype=torch.float32)
# batch index, x1, y1, x2, y2 in input pixels (spatial scale 0.5): inside, straddling borders, tiny, outside.
rois = torch.tensor(
    [
        [0, 1.0, 2.0, 15.0, 13.0],
        [1, -4.0, -3.0, 9.5, 7.25],
        [0, 18.0, 12.0, 30.0, 26.0],
        [1, 5.3, 6.1, 5.9, 6.4],
        [0, -10.0, -10.0, -4.0, -3.0],
        [1, 0.0, 0.0, 24.0, 20.0],
        [0, 7.7, 3.3, 19.1, 18.9],
    ],
    dtype=torch.float32,
)
tensors = {"features": features, "rois": rois}
for name, sampling, aligned in [("s2", 2, False), ("adaptive", -1, False), ("aligned", 2, True)]:
    x = features.clone().requires_grad_(True)
    out = roi_align(x, rois, output_size=(7, 7), spatial_scale=0.5, sampling_ratio=sampling, aligned=aligned)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    tensors[f"{name}.output"] = out.detach()
    tensors[f"{name}.weights"] = weights
    tensors[f"{name}.grad"] = x.grad.detach()
OUT.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT))
print(f"wrote {OUT}")
