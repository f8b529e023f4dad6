"""Faster R-CNN parity fixtures from torchvision 0.29 (fasterrcnn v1 code path), fixed random weights.

  tiny      torchvision's FasterRCNN around a 3-conv backbone (strides 4/8/16, 16 channels), 3 classes,
            min_size 128, max_size 160, representation 32: weights + images + expected outputs in one small
            committed file (tools/reference/fixtures/frcnn/tiny.safetensors), so parity runs without Python.
  resnet50  fasterrcnn_resnet50_fpn's layout (FrozenBatchNorm2d ResNet-50 + FPN), num_classes=3, min_size=256,
            max_size=320, random weights: the checkpoint goes to .cache/reference/frcnn/ (.pth and .safetensors, not
            committed); expected outputs to tools/reference/fixtures/frcnn/resnet50_fpn_expected.safetensors.

Both also record the gradient of the summed training losses (in full for tiny; norms and first values for
resnet50). Sampling is made deterministic by replacing torch.randperm with a reversed arange (TS: reversedPermutation).
resnet50-checkpoint writes only the cached checkpoint (what the TS parity test runs when it is missing).
Run: $(bash ../shared/tools/python-reference-env.sh)/bin/python tools/reference/frcnn_make_fixtures.py [tiny|resnet50]...
"""
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torchvision.models import resnet50 as torchvision_resnet50
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tools" / "reference" / "fixtures" / "frcnn"
CACHE = ROOT / ".cache" / "reference" / "frcnn"

torch.randperm = lambda n, *args, **kwargs: torch.arange(n - 1, -1, -1, device=kwargs.get("device"))
torch.set_num_threads(1)


class TinyBackbone(nn.Module):
    """Strides 4, 8 and 16 ('pool' = FPN's LastLevelMaxPool), 16 channels each."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.lateral = nn.Conv2d(8, 16, 1)
        self.out_channels = 16

    def forward(self, x):
        c1 = F.relu(self.conv1(x))
        c2 = F.relu(self.conv2(c1))
        return OrderedDict([("0", self.lateral(c1)), ("1", c2), ("pool", F.max_pool2d(c2, 1, 2, 0))])


def images_and_targets(generator, sizes, channels):
    images, targets = [], []
    for (h, w), c in zip(sizes, channels):
        # Smooth blobs plus noise, in [0, 1]: something for the convolutions to respond to.
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        base = 0.5 + 0.4 * torch.sin(3 * xx + 2 * yy) * torch.cos(4 * yy)
        noise = 0.1 * torch.rand((c, h, w), generator=generator)
        # Quantized to 8 bits so the fixture stores bytes; the model sees q / 255 (float32), as TS does.
        quantized = ((base[None].expand(c, h, w) + noise).clamp(0, 1) * 255).round().to(torch.uint8)
        images.append(quantized.float() / 255)
        boxes = torch.tensor([[0.1 * w, 0.15 * h, 0.55 * w, 0.6 * h], [0.4 * w, 0.3 * h, 0.95 * w, 0.9 * h]])
        targets.append({"boxes": boxes.float(), "labels": torch.tensor([1, 2])})
    return images, targets


def as_model_input(image):
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def record(model, images, targets, out, proposal_count, full_gradients, train_batch=None):
    """Eval-mode proposals and detections of `images`; train-mode losses and gradients of `train_batch` (images,
    targets; stored under `train.`) when given, else of the same images."""
    model.eval()
    with torch.no_grad():
        inputs = [as_model_input(im) for im in images]
        image_list, _ = model.transform(inputs)
        features = model.backbone(image_list.tensors)
        proposals, _ = model.rpn(image_list, features)
        detections = model(inputs)
    for i, (props, det) in enumerate(zip(proposals, detections)):
        out[f"image{i}.proposals"] = props[:proposal_count].contiguous()
        out[f"image{i}.proposal_count"] = torch.tensor([props.shape[0]], dtype=torch.int32)
        out[f"image{i}.boxes"] = det["boxes"].contiguous()
        out[f"image{i}.scores"] = det["scores"].contiguous()
        out[f"image{i}.labels"] = det["labels"].to(torch.int32).contiguous()
    model.train()
    train_images, train_targets = train_batch or (images, targets)
    losses = model([as_model_input(im) for im in train_images], train_targets)
    for name, value in losses.items():
        out[f"loss.{name}"] = value.detach().reshape(1)
    # The gradient of the summed losses (what training follows): every trainable parameter's in full when the
    # model is small, else its L2 norm and its first 64 values (torch layout), which keeps the fixture small.
    model.zero_grad()
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        if full_gradients:
            out[f"grad.{name}"] = p.grad.detach().contiguous()
        else:
            # In float64: a float32 norm of 12.8 M values (fc6) is off by 1e-3.
            out[f"gradnorm.{name}"] = p.grad.detach().double().norm().reshape(1)
            out[f"gradhead.{name}"] = p.grad.detach().flatten()[:64].contiguous()
    for i, (im, t) in enumerate(zip(images, targets)):
        out[f"image{i}.pixels"] = (im * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()  # HWC bytes
        out[f"image{i}.target_boxes"] = t["boxes"]
        out[f"image{i}.target_labels"] = t["labels"].to(torch.int32)
    if train_batch:
        for i, (im, t) in enumerate(zip(*train_batch)):
            out[f"train.image{i}.pixels"] = (im * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
            out[f"train.image{i}.target_boxes"] = t["boxes"]
            out[f"train.image{i}.target_labels"] = t["labels"].to(torch.int32)
    print({k: float(v) for k, v in losses.items()})
    print("detections per image:", [d["boxes"].shape[0] for d in detections])


def randomize(model, scale):
    """Fixed random weights, larger than torchvision's init so proposals and scores are not degenerate."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) * scale.get(name, 1.0) / fan_in**0.5)
            else:
                p.copy_(torch.randn_like(p) * 0.1)


def tiny():
    torch.manual_seed(0)
    backbone = TinyBackbone()
    model = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=128,
        max_size=160,
        rpn_anchor_generator=AnchorGenerator(((32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 3),
        box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2),
        box_head=TwoMLPHead(16 * 7 * 7, 32),
        box_predictor=FastRCNNPredictor(32, 3),
    )
    randomize(model, {"rpn.head.bbox_pred.weight": 0.2, "roi_heads.box_predictor.bbox_pred.weight": 0.5})
    generator = torch.Generator().manual_seed(1)
    # Both resize to 128x160 (no batch padding): padded zones give tied RPN scores whose order torch.topk leaves undefined.
    images, targets = images_and_targets(generator, [(64, 80), (96, 120)], [1, 3])
    out = {f"weights.{k}": v.contiguous() for k, v in model.state_dict().items()}
    record(model, images, targets, out, proposal_count=60, full_gradients=True)
    path = FIXTURES / "tiny.safetensors"
    save_file(out, str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def resnet50(checkpoint_only=False):
    torch.manual_seed(0)
    # fasterrcnn_resnet50_fpn as built with pretrained backbone weights (FrozenBatchNorm2d, 3 trainable
    # layers); weights_backbone=None would switch to nn.BatchNorm2d, whose training-mode statistics differ.
    backbone = _resnet_fpn_extractor(torchvision_resnet50(norm_layer=FrozenBatchNorm2d), 3)
    model = FasterRCNN(backbone, num_classes=3, min_size=256, max_size=320)
    # Keep torchvision's init for the backbone (frozen BN statistics are identity); make the heads lively.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("rpn.", "roi_heads.")):
                if p.dim() > 1:
                    # Moderate logits: saturated sigmoids/softmaxes give tied scores whose order is arbitrary.
                    scale = 0.05 if ("bbox_pred" in name or "cls" in name) else 1.0
                    p.copy_(torch.randn_like(p) * scale / p[0].numel() ** 0.5)
                else:
                    p.copy_(torch.randn_like(p) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) * 0.5 + 0.75)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), CACHE / "fasterrcnn_resnet50_fpn_random.pth")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(CACHE / "fasterrcnn_resnet50_fpn_random.safetensors"))
    print(f"wrote the checkpoint in {CACHE}")
    if checkpoint_only:
        return
    generator = torch.Generator().manual_seed(2)
    images, targets = images_and_targets(generator, [(200, 240), (180, 150)], [1, 3])
    # Training on a batch that needs no padding (both resize to 256x320): the zero-padded zone of a padded batch
    # gives exactly tied RPN scores, and which of them torch.topk keeps is undefined (libtorch's kernels break
    # such ties differently on different CPUs), so sampled RoIs, losses and gradients would not be comparable.
    train_batch = images_and_targets(generator, [(128, 160), (160, 200), (128, 160)], [1, 3, 1])
    # The third is a negative (normal) image: no boxes, every anchor and proposal background.
    train_batch[1][2] = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}
    out = {}
    record(model, images, targets, out, proposal_count=40, full_gradients=False, train_batch=train_batch)
    path = FIXTURES / "resnet50_fpn_expected.safetensors"
    save_file(out, str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for which in sys.argv[1:] or ["tiny", "resnet50"]:
        {"tiny": tiny, "resnet50": resnet50, "resnet50-checkpoint": lambda: resnet50(True)}[which]()
