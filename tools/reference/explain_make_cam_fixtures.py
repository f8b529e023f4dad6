"""EigenCAM and AblationCAM on a real Faster R-CNN (the ONNX fixture's ResNet-18-FPN checkpoint), computed
with torchvision following pytorch-grad-cam's published definitions (its package is not installed here):

- reshape (fasterrcnn_reshape_transform): |level| resized bilinearly to the 'pool' level, concatenated;
- EigenCAM: get_2d_projection (centre, first right singular vector), ReLU, min-max, resize;
- AblationCAM: AblationLayerFasterRCNN (channel i of levels×256 set to -1000), RPN + ROI heads + postprocess
  re-run on the ablated features, FasterRCNNBoxScoreTarget (IoU + score of the best-IoU box, IoU > 0.5,
  same label), weights (original - ablated) / original in float32, cam = ReLU(sum w * activations), min-max,
  resize to the image.
Explains detection 0 of the first fixture image. Writes tools/reference/fixtures/explain/cams.json.
Run: V=$(bash ../shared/tools/python-reference-env.sh); $V/bin/python tools/reference/explain_make_cam_fixtures.py .cache/reference
"""
import base64
import collections
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import load_file
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.image_list import ImageList

cache = sys.argv[1] if len(sys.argv) > 1 else ".cache/reference"
here = os.path.dirname(__file__)
fixture = json.load(open(os.path.join(here, "fixtures", "onnx", "resnet18_fpn.json")))
backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=3)
# The ONNX fixture's weights, at a larger input so the coarsest FPN level has 3x3 cells to explain.
model = FasterRCNN(backbone, num_classes=3, min_size=160, max_size=192)
model.load_state_dict(load_file(os.path.join(cache, fixture["checkpoint"])))
model.eval()
# Keep the ablation passes affordable on 2 CPU cores: 100 proposals per image (the TypeScript side uses the
# same settings) and pytorch-grad-cam's ratio_channels_to_ablate = 0.01 (its top and bottom 1 % of channels).
model.rpn._pre_nms_top_n = dict(training=2000, testing=100)
model.rpn._post_nms_top_n = dict(training=2000, testing=100)
RATIO = 0.01

h, w = 160, 192
gen = torch.Generator().manual_seed(5)
yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
blob = torch.exp(-(((yy - 60.0) / 25) ** 2 + ((xx - 120.0) / 30) ** 2))
grey = torch.round((0.2 + 0.6 * blob + 0.1 * torch.rand(h, w, generator=gen)).clamp(0, 1) * 255)
image = (grey / 255)[None].repeat(3, 1, 1)  # 8-bit values, so the fixture stores the image exactly

def reshape(features):
    size = features["pool"].shape[-2:]
    return torch.cat([F.interpolate(torch.abs(v), size, mode="bilinear") for v in features.values()], dim=1)

def scale(cam):
    cam = np.maximum(cam, 0)
    cam = cam - cam.min()
    cam = cam / (1e-7 + cam.max())
    return F.interpolate(torch.from_numpy(np.float32(cam))[None, None], (h, w), mode="bilinear").numpy()[0, 0]

def get_projection(acts):
    a = acts.reshape(acts.shape[0], -1).transpose()
    a = a - a.mean(axis=0)
    _, _, vt = np.linalg.svd(a, full_matrices=True)
    return (a @ vt[0, :]).reshape(acts.shape[1:])

def box_score(target_boxes, target_labels, out):
    total = torch.Tensor([0])
    if len(out["boxes"]) == 0:
        return total
    for box, label in zip(target_boxes, target_labels):
        ious = torchvision.ops.box_iou(torch.Tensor(box[None, :]), out["boxes"])
        index = ious.argmax()
        if ious[0, index] > 0.5 and out["labels"][index] == label:
            total = total + ious[0, index] + out["scores"][index]
    return total

with torch.no_grad():
    images, _ = model.transform([image])
    features = model.backbone(images.tensors)
    detections = model.transform.postprocess(model.roi_heads(features, model.rpn(images, features)[0], images.image_sizes)[0],
                                             images.image_sizes, [(h, w)])
    acts = reshape(features).numpy()[0]
    projection = get_projection(acts)
    # pytorch-grad-cam keeps numpy's sign; fedcxr fixes it (positive correlation with mean |activation|).
    if (projection * np.abs(acts).sum(axis=0)).sum() < 0:
        projection = -projection
    eigencam = scale(projection)
    eigencam_raw = projection

    target_boxes = detections[0]["boxes"][:1].numpy()
    target_labels = detections[0]["labels"][:1].numpy()
    original = np.float32(box_score(target_boxes, target_labels, detections[0]).item())
    channels = acts.shape[0]
    # AblationLayer.activations_to_be_ablated: score channels against the EigenCAM mask, keep top + bottom.
    mask = np.abs(get_projection(acts))
    mask = mask - mask.min()
    mask = (mask / mask.max()) > 0.01
    channel_scores = []
    for channel in acts:
        normalized = np.abs(channel)
        normalized = normalized - normalized.min()
        normalized = normalized / np.max(normalized)
        channel_scores.append((mask * normalized).sum() / normalized.sum())
    order = list(np.argsort(np.float32(channel_scores), kind="stable"))
    count = int(channels * RATIO)
    to_ablate = [int(c) for c in order[::-1][:count] + order[:count]]
    scores = []
    batch = 32
    names = list(features.keys())
    for start in range(0, len(to_ablate), batch):
        idx = to_ablate[start:start + batch]
        ablated = collections.OrderedDict((k, v.repeat(len(idx), 1, 1, 1).clone()) for k, v in features.items())
        for i, c in enumerate(idx):
            ablated[names[c // 256]][i, c % 256, :, :] = -1000
        image_list = ImageList(images.tensors.repeat(len(idx), 1, 1, 1), images.image_sizes * len(idx))
        proposals, _ = model.rpn(image_list, ablated)
        dets, _ = model.roi_heads(ablated, proposals, image_list.image_sizes)
        dets = model.transform.postprocess(dets, image_list.image_sizes, [(h, w)] * len(idx))
        scores.extend(box_score(target_boxes, target_labels, d).item() for d in dets)
    # assemble_ablation_scores: skipped channels keep the original score (weight 0); a channel listed twice
    # takes its last score.
    all_scores = np.full(channels, original, dtype=np.float32)
    for c, s in zip(to_ablate, scores):
        all_scores[c] = s
    weights = (original - all_scores) / original
    ablation_raw = (weights[:, None, None] * acts).sum(axis=0)
    ablationcam = scale(ablation_raw)

out = {
    "image_shape": [h, w, 3],
    "image_grey_u8_base64": base64.b64encode(grey.numpy().astype(np.uint8).tobytes()).decode(),
    "settings": {"min_size": 160, "max_size": 192, "pre_nms_top_n": 100, "post_nms_top_n": 100},
    "detection": {"box": target_boxes[0].tolist(), "label": int(target_labels[0]), "score": float(detections[0]["scores"][0])},
    "original_score": float(original),
    "ratio_channels_to_ablate": RATIO,
    "ablated_channels": to_ablate,
    "weights": weights.tolist(),
    "eigencam_raw": eigencam_raw.ravel().tolist(),
    "ablationcam_raw": ablation_raw.ravel().tolist(),
    "cam_stride": 4,
    "eigencam": eigencam[::4, ::4].ravel().tolist(),
    "ablationcam": ablationcam[::4, ::4].ravel().tolist(),
}
path = os.path.join(here, "fixtures", "explain", "cams.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", path, "original score", original, "nonzero weights", int((weights != 0).sum()))
