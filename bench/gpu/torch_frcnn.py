"""PyTorch side of bench/gpu: torchvision's Faster R-CNN (ResNet-50-FPN) on the same card as the tfjs webgpu run.

  1. Builds fasterrcnn_resnet50_fpn's layout as fedcxr builds it (FrozenBatchNorm2d ResNet-50 + FPN, 3
     trainable layers), num_classes=2, min/max size --size, fixed random weights (heads made lively, as in
     tools/reference/frcnn_make_fixtures.py, so detections are not degenerate). Writes the state_dict to
     <work>/weights.safetensors for the Node program to load.
  2. Expected outputs on the CPU in float32 (the reference): the normalized input, the backbone's feature maps
     and the detections for one image -> <work>/expected.safetensors.
  3. Times inference (batch 1) and one training step (forward + losses + backward + SGD update, batch --batch)
     on --device, and the same for the backbone alone (features; loss = sum of the levels' means), with the same weights and image: 'matched' (the model above, cuDNN defaults, i.e. TF32
     convolutions), 'matched_fp32' (TF32 off: the arithmetic WebGPU does) and 'torchvision_default'
     (fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None): BatchNorm2d, all 5 layers trainable).
     Prints and writes JSON (<out>).

No dependency beyond torch/torchvision: safetensors are written by hand (8-byte header length, JSON, data).

Usage: python3 bench/gpu/torch_frcnn.py --work /tmp/gpu-bench --out torch.json [--size 512] [--batch 2]
       [--infer-n 20] [--train-n 10] [--device cuda]
"""
import argparse
import json
import struct
import time
from pathlib import Path

import torch
import torchvision
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops import FrozenBatchNorm2d

DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.uint8: "U8", torch.int64: "I64"}


def save_safetensors(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def matched_model(size):
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3)
    model = FasterRCNN(backbone, num_classes=2, min_size=size, max_size=size)
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
    return model


def test_image(size):
    """Smooth pattern plus noise, 8-bit, one channel (a chest X-ray is grey); the model sees q / 255."""
    generator = torch.Generator().manual_seed(2)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    base = 0.5 + 0.4 * torch.sin(3 * xx + 2 * yy) * torch.cos(4 * yy)
    noise = 0.1 * torch.rand((size, size), generator=generator)
    return ((base + noise).clamp(0, 1) * 255).round().to(torch.uint8)


def targets_for(size):
    boxes = torch.tensor([[0.1 * size, 0.15 * size, 0.55 * size, 0.6 * size], [0.4 * size, 0.3 * size, 0.95 * size, 0.9 * size]])
    return {"boxes": boxes.float(), "labels": torch.tensor([1, 1])}


def timed(fn, warmup, n, device):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": times[len(times) // 2], "mean_ms": sum(times) / len(times), "min_ms": times[0], "n": n}


def bench(model, image, size, batch, args, device):
    model.to(device)
    one = [image.to(device)]
    images = [image.to(device) for _ in range(batch)]
    targets = [{k: v.to(device) for k, v in targets_for(size).items()} for _ in range(batch)]

    def infer():
        model.eval()
        with torch.no_grad():
            return model(one)

    detections = len(infer()[0]["boxes"])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-5)

    def train_step():
        model.train()
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    # The backbone alone, on the transform's output (what the Node side times where the detector cannot run).
    with torch.no_grad():
        x1 = model.transform(one)[0].tensors
    x2 = torch.cat([x1] * batch)

    def backbone_infer():
        model.eval()
        with torch.no_grad():
            return model.backbone(x1)

    def backbone_train_step():
        model.train()
        loss = sum(f.mean() for f in model.backbone(x2).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    inference = timed(infer, 3, args.infer_n, device)
    inference["images_per_s"] = 1000 / inference["median_ms"]
    train = timed(train_step, 3, args.train_n, device)
    train["images_per_s"] = batch * 1000 / train["median_ms"]
    backbone_inference = timed(backbone_infer, 3, args.infer_n, device)
    backbone_inference["images_per_s"] = 1000 / backbone_inference["median_ms"]
    backbone_train = timed(backbone_train_step, 3, args.train_n, device)
    backbone_train["images_per_s"] = batch * 1000 / backbone_train["median_ms"]
    model.to("cpu")
    return {
        "inference": inference,
        "train_step": train,
        "backbone_inference": backbone_inference,
        "backbone_train_step": backbone_train,
        "detections_per_image": detections,
        "trainable_parameters": sum(p.numel() for p in params),
    }


def training_run(model, image, size, args, device):
    """SGD with momentum 0.9 at --run-lr on the fixed batch from the saved weights: the loss of every step."""
    model.to(device)
    images = [image.to(device) for _ in range(args.batch)]
    targets = [{k: v.to(device) for k, v in targets_for(size).items()} for _ in range(args.batch)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.run_lr, momentum=0.9)
    model.train()
    losses = []
    start = time.perf_counter()
    for _ in range(args.run_steps):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) * 1000
    model.to("cpu")
    return {"steps": args.run_steps, "lr": args.run_lr, "losses": losses, "ms_per_step": ms / args.run_steps}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--infer-n", type=int, default=20)
    parser.add_argument("--train-n", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--run-steps", type=int, default=0)
    parser.add_argument("--run-lr", type=float, default=0.01)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    size = args.size
    report = {"torch": torch.__version__, "torchvision": torchvision.__version__, "size": size, "batch": args.batch}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)

    model = matched_model(size)
    start = time.perf_counter()
    save_safetensors({k: v for k, v in model.state_dict().items()}, work / "weights.safetensors")
    pixels = test_image(size)
    image = (pixels.float() / 255)[None].expand(3, size, size).contiguous()
    model.eval()
    with torch.no_grad():
        image_list, _ = model.transform([image])
        features = model.backbone(image_list.tensors)
        detections = model([image])[0]
    expected = {"pixels": pixels[:, :, None].contiguous(), "input": image_list.tensors}
    for name, f in features.items():
        expected[f"features.{name}"] = f
    expected["boxes"] = detections["boxes"]
    expected["scores"] = detections["scores"]
    expected["labels"] = detections["labels"].to(torch.int32)
    save_safetensors(expected, work / "expected.safetensors")
    report["reference"] = {
        "seconds": time.perf_counter() - start,
        "detections": len(detections["boxes"]),
        "top_scores": detections["scores"][:5].tolist(),
    }
    print(json.dumps(report), flush=True)

    if not args.skip_bench:
        device = torch.device(args.device)
        report["device"] = str(device)
        # Each variant starts from the saved weights (training steps move them, and fewer surviving detections
        # would make a later variant's inference cheaper).
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        report["matched"] = bench(model, image, size, args.batch, args, device)
        if device.type == "cuda":
            conv_tf32 = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
            model.load_state_dict(initial)
            report["matched_fp32"] = bench(model, image, size, args.batch, args, device)
            torch.backends.cudnn.allow_tf32 = conv_tf32
        if args.run_steps > 0:
            model.load_state_dict(initial)
            report["training_run"] = training_run(model, image, size, args, device)
        torch.manual_seed(0)
        default = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2, min_size=size, max_size=size)
        report["torchvision_default"] = bench(default, image, size, args.batch, args, device)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
