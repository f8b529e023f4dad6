"""Parity fixtures for the TypeScript backbones: each backbone is built from torchvision's own parts with
FIXED random weights (torch.manual_seed; FrozenBatchNorm statistics, biases and relative position bias
tables randomized too so they matter), saved as a .pth checkpoint with torchvision FasterRCNN keys
(`backbone.body.*`, `backbone.fpn.*`) into a cache directory (NOT committed), and run in eval mode on
fixed synthetic images. Small summaries of every output level are committed as fixtures:
tools/reference/fixtures/backbones/<arch>.json (shape, sum, mean, std, max |x| and sampled values).

  resnet18_fpn / resnet50_fpn / resnet101_fpn: torchvision.models.detection.backbone_utils.resnet_fpn_backbone
      (FrozenBatchNorm2d, LastLevelMaxPool, returned layers 1-4)
  swin_t_fpn: torchvision.models.swin_t().features, stage outputs features[1], [3], [5], [7] permuted to
      NCHW, into torchvision.ops.FeaturePyramidNetwork([96, 192, 384, 768], 256, LastLevelMaxPool())

Usage:
  V=$(bash ../shared/tools/python-reference-env.sh)
  $V/bin/python tools/reference/backbone_make_fixtures.py                     # checkpoints + fixtures
  $V/bin/python tools/reference/backbone_make_fixtures.py --checkpoints-only --arch resnet50_fpn
  $V/bin/python tools/reference/backbone_make_fixtures.py --import-layouts   # COCO / ImageNet layouts
  $V/bin/python tools/reference/backbone_make_fixtures.py --hashed           # fixtures CI can check
"""
import argparse
import collections
import json
import math
import os
import time

import torch
import torchvision
from torch import nn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tools", "reference", "fixtures", "backbones")
SEEDS = {"resnet18_fpn": 18, "resnet50_fpn": 50, "resnet101_fpn": 101, "swin_t_fpn": 7}
# (batch, height, width) of the synthetic inputs; the odd sizes exercise padding / ceil / window paths.
IMAGES = {
    "resnet18_fpn": [(1, 96, 128), (2, 75, 109)],
    "resnet50_fpn": [(1, 96, 128)],
    "resnet101_fpn": [(1, 64, 96)],
    "swin_t_fpn": [(1, 96, 128), (1, 75, 109)],
}
SAMPLES_PER_LEVEL = 200


class SwinBody(nn.Module):
    """swin_t's `features` returning the four stage outputs as NCHW maps '0'..'3'."""

    def __init__(self):
        super().__init__()
        self.features = torchvision.models.swin_t().features

    def forward(self, x):
        out = collections.OrderedDict()
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 3, 5, 7):
                out[str(len(out))] = x.permute(0, 3, 1, 2)
        return out


class SwinFpn(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = SwinBody()
        self.fpn = FeaturePyramidNetwork([96, 192, 384, 768], 256, extra_blocks=LastLevelMaxPool())
        self.out_channels = 256

    def forward(self, x):
        return self.fpn(self.body(x))


def build(arch):
    torch.manual_seed(SEEDS[arch])
    if arch == "swin_t_fpn":
        model = SwinFpn()
    else:
        model = resnet_fpn_backbone(
            backbone_name=arch.replace("_fpn", ""), weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3
        )
    g = torch.Generator().manual_seed(SEEDS[arch] + 1000)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, FrozenBatchNorm2d):
                n = module.weight.numel()
                module.weight.copy_(torch.rand(n, generator=g) * 0.8 + 0.6)
                module.bias.copy_(torch.randn(n, generator=g) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            elif isinstance(module, nn.LayerNorm):
                n = module.weight.numel()
                module.weight.copy_(torch.rand(n, generator=g) * 0.8 + 0.6)
                module.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.05)
            if hasattr(module, "relative_position_bias_table"):
                t = module.relative_position_bias_table
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return model.eval()


def synthetic_images(batch, height, width):
    """The same formula is computed in TypeScript (float64 then rounded to float32)."""
    n = torch.arange(batch, dtype=torch.float64).view(-1, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float64).view(1, -1, 1, 1)
    y = torch.arange(height, dtype=torch.float64).view(1, 1, -1, 1)
    x = torch.arange(width, dtype=torch.float64).view(1, 1, 1, -1)
    v = torch.sin(0.11 * y * (c + 1) + 0.3 * n) * torch.cos(0.07 * x - 0.5 * c) + 0.25 * torch.sin(0.013 * x * y + c)
    return (1.8 * v).float()


# Gradient checks: loss = sum over levels of mean(map^2) on a small image, eval mode; these parameters.
GRADIENT_CASES = {
    "resnet18_fpn": {
        "input": (1, 64, 64),
        "params": [
            "body.layer4.1.conv2.weight",
            "body.layer2.0.downsample.0.weight",
            "fpn.inner_blocks.0.0.weight",
            "fpn.layer_blocks.3.0.bias",
        ],
    },
    "swin_t_fpn": {
        "input": (1, 64, 64),
        "params": [
            "body.features.7.1.mlp.3.weight",
            "body.features.6.reduction.weight",
            "body.features.5.0.attn.relative_position_bias_table",
            "body.features.5.1.norm1.weight",
            "body.features.3.1.attn.qkv.weight",
            "fpn.inner_blocks.1.0.weight",
        ],
    },
}


def gradient_fixture(model, arch, g):
    spec = GRADIENT_CASES[arch]
    params = dict(model.named_parameters())
    model.zero_grad()
    outputs = model(synthetic_images(*spec["input"]))
    loss = sum((v.double() ** 2).mean() for v in outputs.values())
    loss.backward()
    grads = []
    for name in spec["params"]:
        grad = params[name].grad
        summary = summarize(f"backbone.{name}", grad, g)
        grads.append(summary)
    return {"input": [spec["input"][0], 3, spec["input"][1], spec["input"][2]], "loss": float(loss.detach()), "params": grads}


# Weights from an integer hash of (tensor name, element index): TypeScript computes the very same floats
# (packages/models-frcnn/src/backbones/hashed-weights.ts), so these parity fixtures need no checkpoint and
# run where Python does not (CI).
HASHED_CASES = {"resnet18_fpn": [(1, 96, 128)], "resnet50_fpn": [(1, 64, 96)], "swin_t_fpn": [(1, 64, 96)]}
M32 = 0xFFFFFFFF


def fnv1a(name):
    h = 0x811C9DC5
    for byte in name.encode("utf8"):
        h = ((h ^ byte) * 0x01000193) & M32
    return h


def hashed_uniform(name, count):
    """u in [0, 1): murmur3-style finalizer of (index * golden + fnv1a(name)) mod 2^32."""
    import numpy as np

    h = (np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(fnv1a(name))) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    return h.astype(np.float64) / 4294967296.0


def hashed_value(name, shape):
    """The value rule (mirrored in TypeScript): uniform with a scale chosen by the tensor's role."""
    import numpy as np

    count = int(np.prod(shape)) if len(shape) else 1
    u = hashed_uniform(name, count)
    centered = (2 * u - 1) * math.sqrt(3)  # mean 0, std 1
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        v = 0.5 + 1.5 * u
    elif leaf == "running_mean":
        v = 0.1 * centered
    elif leaf == "relative_position_bias_table":
        v = 0.5 * centered
    elif leaf == "bias":
        v = 0.05 * centered
    elif leaf == "weight" and len(shape) == 1:  # batch/layer norm scale
        v = 1 + 0.2 * centered
    else:  # conv [O, I, kh, kw] or linear [out, in]: std 1/sqrt(fan_in)
        fan_in = int(np.prod(shape[1:]))
        v = centered / math.sqrt(fan_in)
    return torch.from_numpy(v.reshape(shape)).float()


def hashed_model(arch):
    model = build(arch)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(hashed_value(f"backbone.{key}", list(tensor.shape)))
    return model


def write_hashed_fixtures():
    for arch, sizes in HASHED_CASES.items():
        model = hashed_model(arch)
        g = torch.Generator().manual_seed(54321)
        cases = []
        for batch, height, width in sizes:
            with torch.no_grad():
                outputs = model(synthetic_images(batch, height, width))
            cases.append(
                {"input": [batch, 3, height, width], "levels": [summarize(k, v, g) for k, v in outputs.items()]}
            )
        state = collections.OrderedDict((f"backbone.{k}", v) for k, v in model.state_dict().items())
        fixture = {
            "arch": arch,
            "weights": "hashed",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "weights_checksum": weights_checksum(state),
            "num_tensors": len(state),
            "cases": cases,
        }
        path = os.path.join(FIXTURES, f"{arch}.hashed.json")
        with open(path, "w") as f:
            json.dump(fixture, f)
        print(f"{arch}: hashed-weights fixture {path} ({os.path.getsize(path)} bytes)", flush=True)


def checkpoint_path(cache, arch):
    return os.path.join(cache, f"{arch}.pth")


def save_checkpoint(model, cache, arch):
    os.makedirs(cache, exist_ok=True)
    state = collections.OrderedDict((f"backbone.{k}", v) for k, v in model.state_dict().items())
    path = checkpoint_path(cache, arch)
    tmp = f"{path}.{os.getpid()}.tmp"  # parallel test workers may generate at the same time
    torch.save(state, tmp)
    os.replace(tmp, path)
    return state


def weights_checksum(state):
    """Sum of |w| over floating tensors, float64: tells the test it loaded the very same checkpoint."""
    return float(sum(v.double().abs().sum() for v in state.values() if v.is_floating_point()))


def summarize(name, t, g):
    flat = t.reshape(-1).double()
    count = flat.numel()
    idx = torch.randint(0, count, (SAMPLES_PER_LEVEL,), generator=g).sort().values
    nchw = torch.stack(torch.unravel_index(idx, t.shape), 1)
    return {
        "name": name,
        "shape_nchw": list(t.shape),
        "sum": float(flat.sum()),
        "mean": float(flat.mean()),
        "std": float(flat.std(unbiased=False)),
        "max_abs": float(flat.abs().max()),
        "samples": {"index_nchw": nchw.tolist(), "values": [float(v) for v in flat[idx]]},
    }


def save_import_layouts(cache):
    """Checkpoints in the official files' layouts (random weights) for the import tests."""
    os.makedirs(cache, exist_ok=True)
    torch.manual_seed(0)
    coco = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    # The 2019 COCO file predates torch's zip format: write the legacy serialization like it.
    files = {
        "fasterrcnn_resnet50_fpn_coco-layout.pth": (coco.state_dict(), False),
        "resnet50-imagenet-layout.pth": (torchvision.models.resnet50().state_dict(), True),
        "swin_t-imagenet-layout.pth": (torchvision.models.swin_t().state_dict(), True),
    }
    for name, (state, zip_format) in files.items():
        path = os.path.join(cache, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        torch.save(state, tmp, _use_new_zipfile_serialization=zip_format)
        os.replace(tmp, path)
        print(f"{path}: {len(state)} tensors", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", action="append", choices=sorted(SEEDS), help="default: all")
    parser.add_argument("--cache", default=os.path.join(ROOT, ".cache", "reference", "backbones"))
    parser.add_argument("--checkpoints-only", action="store_true", help="write the .pth files, not the fixtures")
    parser.add_argument(
        "--import-layouts", action="store_true", help="only write COCO/ImageNet-layout checkpoints for import tests"
    )
    parser.add_argument("--hashed", action="store_true", help="only write the hashed-weights fixtures (no checkpoint)")
    args = parser.parse_args()
    if args.import_layouts:
        save_import_layouts(args.cache)
        return
    if args.hashed:
        write_hashed_fixtures()
        return
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for arch in args.arch or sorted(SEEDS):
        started = time.time()
        model = build(arch)
        state = save_checkpoint(model, args.cache, arch)
        print(f"{arch}: checkpoint {checkpoint_path(args.cache, arch)} ({time.time() - started:.1f} s)", flush=True)
        if args.checkpoints_only:
            continue
        cases = []
        g = torch.Generator().manual_seed(12345)
        for batch, height, width in IMAGES[arch]:
            with torch.no_grad():
                outputs = model(synthetic_images(batch, height, width))
            cases.append(
                {"input": [batch, 3, height, width], "levels": [summarize(k, v, g) for k, v in outputs.items()]}
            )
        gradients = gradient_fixture(model, arch, g) if arch in GRADIENT_CASES else None
        fixture = {
            "arch": arch,
            "seed": SEEDS[arch],
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "weights_checksum": weights_checksum(state),
            "num_tensors": len(state),
            "cases": cases,
        }
        if gradients:
            fixture["gradients"] = gradients
        path = os.path.join(FIXTURES, f"{arch}.json")
        with open(path, "w") as f:
            json.dump(fixture, f)
        print(f"{arch}: fixture {path} ({os.path.getsize(path)} bytes, {time.time() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
