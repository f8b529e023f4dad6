"""Random weights for the predict benchmark: torchvision's fasterrcnn_resnet50_fpn architecture.

The model is built as fasterrcnn_resnet50_fpn builds it for deployment (ResNet-50 body with
FrozenBatchNorm2d, trainable_layers 3, FPN with LastLevelMaxPool, default RPN/ROI heads), with num_classes 8
and min_size = max_size = 512, fixed random weights (batch norm statistics randomized too), and its
state_dict saved as safetensors (~165 MB, never committed).

Run: V=$(bash ../shared/tools/python-reference-env.sh); $V/bin/python tools/reference/predict_bench_weights.py .cache/bench/frcnn-resnet50-fpn-c8.safetensors
"""
import os
import sys

import torch
from safetensors.torch import save_file
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone


def build_model(num_classes: int = 8, size: int = 512) -> FasterRCNN:
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    return FasterRCNN(backbone, num_classes=num_classes, min_size=size, max_size=size)


def main(out: str) -> None:
    torch.manual_seed(0)
    model = build_model()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn_like(buf) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
            elif name.endswith(".weight") and buf.dim() == 1:  # frozen BN scale (a buffer)
                buf.copy_(torch.rand_like(buf) * 0.5 + 0.5)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    tmp = out + ".tmp"
    save_file(state, tmp)
    os.replace(tmp, out)
    print("wrote", out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
