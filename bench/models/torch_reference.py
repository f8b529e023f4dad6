"""PyTorch side of bench/models: torchvision's Faster R-CNN v1 (FrozenBatchNorm2d ResNet + FPN, 3 trainable
layers, as fasterrcnn_resnet50_fpn builds it with a pretrained backbone) on the same synthetic batch as the TS
bench; eval forward and one SGD training step (forward + backward + update). Prints one JSON line of
best-of-reps milliseconds.

Usage: python bench/models/torch_reference.py '{"backbone": "resnet18_fpn", "size": 256, "batch": 1, "reps": 2, "threads": 2}'
"""
import json
import sys
import time

import torch
from torchvision.models import resnet18, resnet50, resnet101
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops import FrozenBatchNorm2d

RESNETS = {"resnet18_fpn": resnet18, "resnet50_fpn": resnet50, "resnet101_fpn": resnet101}


def best_ms(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    size, batch = args["size"], args["batch"]
    backbone = _resnet_fpn_extractor(RESNETS[args["backbone"]](norm_layer=FrozenBatchNorm2d), 3)
    model = FasterRCNN(backbone, num_classes=3, min_size=size, max_size=size)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = (0.5 + 0.4 * torch.sin(3 * xx + 2 * yy) * torch.cos(4 * yy))[None].expand(3, size, size).contiguous()
    images = [image.clone() for _ in range(batch)]
    box = torch.tensor([[0.2 * size, 0.25 * size, 0.6 * size, 0.7 * size]])
    targets = [{"boxes": box.clone(), "labels": torch.tensor([1])} for _ in range(batch)]

    def forward():
        model.eval()
        with torch.no_grad():
            model(images)

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def train_step():
        model.train()
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    print(json.dumps({"forward_ms": best_ms(forward, args["reps"]), "train_ms": best_ms(train_step, args["reps"])}))


if __name__ == "__main__":
    main()
