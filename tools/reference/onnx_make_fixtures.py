"""Reference outputs for the ONNX export of Faster R-CNN (ResNet-18-FPN, 3 classes, random weights).

Builds torchvision's FasterRCNN on resnet_fpn_backbone('resnet18') with fixed random weights (frozen batch
norm statistics randomized too, so folding them is tested), saves the state_dict as safetensors into the
cache folder given as argv[1] (not committed: ~110 MB), and writes a small committed fixture with the
normalized input, samples of every FPN level and RPN head output, and the box head's outputs on RoIs pooled
by torchvision's MultiScaleRoIAlign.

Run: V=$(bash ../shared/tools/python-reference-env.sh); $V/bin/python tools/reference/onnx_make_fixtures.py .cache/reference
(tests add --checkpoint-only when the cache is empty)
"""
import base64
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

args = [a for a in sys.argv[1:] if not a.startswith("--")]
# --checkpoint-only: what tests run when the cache is empty (several may at once): write the checkpoint
# atomically and leave the committed fixture alone.
checkpoint_only = "--checkpoint-only" in sys.argv
cache = args[0] if args else ".cache/reference"
os.makedirs(cache, exist_ok=True)
torch.manual_seed(0)
backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=3)
model = FasterRCNN(backbone, num_classes=3, min_size=64, max_size=96)
with torch.no_grad():
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn_like(buf) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand_like(buf) + 0.5)
    for name, p in model.named_parameters():
        if ".bn" in name or "downsample.1" in name:
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
model.eval()
state = {k: v.contiguous() for k, v in model.state_dict().items()}
target = os.path.join(cache, "onnx-resnet18-fpn.safetensors")
tmp = f"{target}.{os.getpid()}.tmp"
save_file(state, tmp)
os.replace(tmp, target)
if checkpoint_only:
    print("wrote", target)
    sys.exit(0)

gen = torch.Generator().manual_seed(1)
image = torch.rand(3, 64, 96, generator=gen)
images, _ = model.transform([image])
x = images.tensors
rng = np.random.default_rng(0)

def sample(t):
    flat = t.detach().numpy().ravel()
    idx = np.sort(rng.choice(flat.size, size=min(64, flat.size), replace=False))
    return {"shape": list(t.shape), "sum": float(flat.astype(np.float64).sum()), "abs_sum": float(np.abs(flat).astype(np.float64).sum()),
            "index": idx.tolist(), "values": flat[idx].tolist()}

with torch.no_grad():
    features = model.backbone(x)
    objectness, deltas = model.rpn.head(list(features.values()))
    rois = torch.tensor([[4.0, 6.0, 40.0, 50.0], [0.0, 0.0, 95.0, 63.0], [30.5, 10.25, 60.0, 30.0], [10.0, 20.0, 14.0, 26.0],
                         [50.0, 5.0, 90.0, 60.0], [2.0, 2.0, 20.0, 12.0]])
    pooled = model.roi_heads.box_roi_pool(features, [rois], images.image_sizes)
    head = model.roi_heads.box_head(pooled)
    class_logits, box_regression = model.roi_heads.box_predictor(head)
    # End to end in eval mode on two images of different sizes (the second is resized and padded).
    image2 = torch.rand(3, 80, 60, generator=gen)
    detections = model([image, image2])
    # The first image as an 8-bit grey PNG would carry it (what `cxr predict` reads), replicated to RGB as
    # fedcxr's transform does for one-channel input.
    grey_u8 = torch.round(image[0] * 255)
    grey_detections = model([(grey_u8 / 255)[None].repeat(3, 1, 1)])[0]

out = {
    "checkpoint": "onnx-resnet18-fpn.safetensors",
    "input_shape": list(x.shape),
    "input_f32_base64": base64.b64encode(x.numpy().astype("<f4").tobytes()).decode(),
    "features": {k: sample(v) for k, v in features.items()},
    "objectness": [sample(t) for t in objectness],
    "deltas": [sample(t) for t in deltas],
    "rois": rois.tolist(),
    "pooled": sample(pooled),
    "class_logits": class_logits.numpy().tolist(),
    "box_regression": box_regression.numpy().tolist(),
    "images_f32_base64": [base64.b64encode(im.permute(1, 2, 0).numpy().astype("<f4").tobytes()).decode() for im in (image, image2)],
    "image_shapes": [[64, 96, 3], [80, 60, 3]],
    "detections": [{k: v.numpy().tolist() for k, v in d.items()} for d in detections],
    "grey_u8_base64": base64.b64encode(grey_u8.numpy().astype(np.uint8).tobytes()).decode(),
    "grey_detections": {k: v.numpy().tolist() for k, v in grey_detections.items()},
}
path = os.path.join(os.path.dirname(__file__), "fixtures", "onnx", "resnet18_fpn.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path, "and", os.path.join(cache, "onnx-resnet18-fpn.safetensors"))
