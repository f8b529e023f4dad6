"""Loads a fedcxr model directory's weights.safetensors into the matching torchvision model (PyTorch side
of the interchange claim): prints missing/unexpected keys and whether every tensor loaded.

  V=$(bash ../shared/tools/python-reference-env.sh); $V/bin/pip install safetensors  # if absent
  $V/bin/python tools/reference/backbone_check_model_dir.py <model-dir>
"""
import json
import os
import sys

import torch
import torchvision
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backbone_make_fixtures import SwinFpn  # noqa: E402


def main():
    model_dir = sys.argv[1]
    card = json.load(open(os.path.join(model_dir, "model.json")))
    weights = load_file(os.path.join(model_dir, card["weights"]["file"]))
    num_classes = len(card["classes"])
    backbone = card["backbone"]
    if backbone == "swin_t_fpn":
        from torchvision.models.detection import FasterRCNN

        model = FasterRCNN(SwinFpn(), num_classes=num_classes)
    else:
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
        from torchvision.models.detection import FasterRCNN
        from torchvision.ops.misc import FrozenBatchNorm2d

        body = resnet_fpn_backbone(
            backbone_name=backbone.replace("_fpn", ""), weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3
        )
        model = FasterRCNN(body, num_classes=num_classes)
    result = model.load_state_dict(weights, strict=False)
    state = model.state_dict()
    same = all(torch.equal(state[k], v) for k, v in weights.items() if k in state)
    print(
        json.dumps(
            {
                "backbone": backbone,
                "tensors": len(weights),
                "missing": result.missing_keys,
                "unexpected": result.unexpected_keys,
                "all_loaded_equal": same,
                "uninitialized_per_card": card["weights"]["uninitialized"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
