"""The torchvision side of bench/quality: the same Faster R-CNN, data, recipe and initial weights as fedcxr's
`cxr train`, trained with torchvision, validated each epoch with pycocotools, and its best epoch's detections
on the test split written as COCO results.

    python bench/quality/torchvision_side.py init  --recipe recipe.json --out init.pth
    python bench/quality/torchvision_side.py train --recipe recipe.json --init init.pth --out <dir>

`recipe.json` is written by bench/quality/quality.ts; one recipe drives both sides. The augmentation repeats
fedcxr's (packages/core/src/transforms/transforms.ts) operation for operation: one bilinear affine warp for
rotation (pixel centres, zero fill, boxes to the enclosing box of their moved corners, clipped, dropped when
thinner than 1 px), then brightness and contrast as fedcxr's adjustIntensity. The draws differ (numpy's
generator and torch.randperm instead of fedcxr's), the distributions do not — unless the recipe says
`"draws": "fedcxr"` (bench:quality --paired): then the epoch order, every augmentation and the RPN/RoI samplers'
permutations are fedcxr's own (bench/quality/fedcxr_draws.py), and the two runs differ only by floating point.
"""
import argparse
import os
import subprocess
import tempfile
import contextlib
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
try:  # pycocotools scores when it is installed; elsewhere (the GPU machine) `cxr eval`, proven identical to it.
    if os.environ.get("FEDCXR_NO_PYCOCOTOOLS"):  # to test the fallback where pycocotools is installed
        raise ImportError("FEDCXR_NO_PYCOCOTOOLS")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError:
    COCO = None
from torchvision.models import resnet18, resnet50
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops.misc import FrozenBatchNorm2d

import fedcxr_draws

STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def build_model(recipe):
    model_cfg = recipe["model"]
    arch = {"resnet18_fpn": resnet18, "resnet50_fpn": resnet50}[model_cfg["backbone"]]
    backbone = _resnet_fpn_extractor(arch(norm_layer=FrozenBatchNorm2d), model_cfg["trainableLayers"])
    heads = model_cfg.get("heads", {})
    rpn = heads.get("rpn", {})
    roi = heads.get("roi", {})
    representation = roi.get("representationSize", 1024)
    num_classes = model_cfg["numClasses"] + 1
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=model_cfg["minSize"],
        max_size=model_cfg["maxSize"],
        rpn_pre_nms_top_n_train=rpn.get("preNmsTopN", {}).get("training", 2000),
        rpn_pre_nms_top_n_test=rpn.get("preNmsTopN", {}).get("testing", 1000),
        rpn_post_nms_top_n_train=rpn.get("postNmsTopN", {}).get("training", 2000),
        rpn_post_nms_top_n_test=rpn.get("postNmsTopN", {}).get("testing", 1000),
        rpn_batch_size_per_image=rpn.get("batchSizePerImage", 256),
        box_batch_size_per_image=roi.get("batchSizePerImage", 512),
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
    )


# ------------------------------------------------------------------------------------------- data
class CocoImages:
    def __init__(self, annotations, image_dir=None):
        self.file = annotations
        self.dataset = json.loads(Path(annotations).read_text())
        self.dir = Path(image_dir) if image_dir else Path(annotations).parent
        self.images = {img["id"]: img for img in self.dataset["images"]}
        self.ids = sorted(self.images)
        self.category_ids = sorted(c["id"] for c in self.dataset["categories"])
        self.label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        self.boxes_of = {i: [] for i in self.ids}
        for ann in self.dataset["annotations"]:
            if not ann.get("iscrowd"):
                self.boxes_of[ann["image_id"]].append(ann)

    def __len__(self):
        return len(self.ids)

    def load(self, k):
        info = self.images[self.ids[k]]
        image = np.asarray(Image.open(self.dir / info["file_name"]).convert("L"), dtype=np.float32)
        image /= 65535.0 if image.max() > 255 else 255.0
        boxes, labels = [], []
        for ann in self.boxes_of[info["id"]]:
            x, y, w, h = ann["bbox"]
            boxes.append([x, y, x + w, y + h])
            labels.append(self.label_of[ann["category_id"]])
        return image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(labels, dtype=np.int64)


def rotation_about(degrees, cx, cy):
    t = degrees * math.pi / 180
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]])


def warp(image, boxes, labels, m):
    """fedcxr's warpAffine: output pixel centres mapped back by the inverse, bilinear, zero outside."""
    h, w = image.shape
    full = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(full)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inv[0, 0] * (xs + 0.5) + inv[0, 1] * (ys + 0.5) + inv[0, 2] - 0.5
    sy = inv[1, 0] * (xs + 0.5) + inv[1, 1] * (ys + 0.5) + inv[1, 2] - 0.5
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = sx - x0
    fy = sy - y0

    def at(xi, yi):
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        return np.where(inside, image[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0.0)

    top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
    bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
    out = (top * (1 - fy) + bottom * fy).astype(np.float32)
    kept_boxes, kept_labels = [], []
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]]).T
        px, py = m @ corners
        nx1, ny1 = np.clip(px.min(), 0, w), np.clip(py.min(), 0, h)
        nx2, ny2 = np.clip(px.max(), 0, w), np.clip(py.max(), 0, h)
        if nx2 - nx1 < 1 or ny2 - ny1 < 1:
            continue
        kept_boxes.append([nx1, ny1, nx2, ny2])
        kept_labels.append(label)
    return out, np.asarray(kept_boxes, dtype=np.float64).reshape(-1, 4), np.asarray(kept_labels, dtype=np.int64)


def adjust_intensity(image, brightness, contrast):
    """fedcxr's adjustIntensity: mean of the brightened image, contrast blend, clip to [0, 1]."""
    scaled = image.astype(np.float64) * brightness
    mean = scaled.mean()
    return np.clip(contrast * scaled + (1 - contrast) * mean, 0, 1).astype(np.float32)


def augment(sample, aug, rng):
    image, boxes, labels = sample
    h, w = image.shape
    degrees = rng.uniform(-aug["rotationDegrees"], aug["rotationDegrees"]) if aug["rotationDegrees"] > 0 else 0.0
    brightness = rng.uniform(1 - aug["brightness"], 1 + aug["brightness"]) if aug["brightness"] > 0 else 1.0
    contrast = rng.uniform(1 - aug["contrast"], 1 + aug["contrast"]) if aug["contrast"] > 0 else 1.0
    if degrees != 0:
        image, boxes, labels = warp(image, boxes, labels, rotation_about(degrees, w / 2, h / 2))
    if brightness != 1 or contrast != 1:
        image = adjust_intensity(image, brightness, contrast)
    return image, boxes, labels


def to_input(image):
    """Grey [0, 1] → the 3-channel tensor torchvision's transform normalizes (fedcxr repeats grey the same way)."""
    return torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0).expand(3, -1, -1).contiguous()


# --------------------------------------------------------------------------------------- training
def learning_rate(recipe, global_step, epoch, fraction):
    """fedcxr's learningRateAt (packages/core/src/train/schedule.ts)."""
    s = recipe["schedule"]
    warm = 1.0
    if global_step < s["warmupSteps"]:
        alpha = global_step / s["warmupSteps"]
        warm = s["warmupFactor"] * (1 - alpha) + alpha
    factor = 1.0
    if s["type"] == "step":
        factor = s["gamma"] ** sum(1 for m in s["milestones"] if epoch + 1 >= m)
    elif s["type"] == "cosine":
        progress = min(1.0, (epoch + fraction) / max(1, recipe["epochs"]))
        factor = s["minFactor"] + (1 - s["minFactor"]) * 0.5 * (1 + math.cos(math.pi * progress))
    return recipe["optimizer"]["lr"] * warm * factor


@torch.no_grad()
def predict(model, data, batch_size):
    model.eval()
    results = []
    for start in range(0, len(data), batch_size):
        ks = list(range(start, min(len(data), start + batch_size)))
        images = [to_input(data.load(k)[0]) for k in ks]
        for k, out in zip(ks, model(images)):
            for box, score, label in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                x1, y1, x2, y2 = box
                results.append({
                    "image_id": data.ids[k],
                    "category_id": data.category_ids[label - 1],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": score,
                })
    return results


def coco_stats(data, results):
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    if COCO is None:
        return cxr_eval_stats(data, results)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(data.file)
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: max(0.0, float(v)) for name, v in zip(STAT_NAMES, ev.stats)}


def cxr_eval_stats(data, results):
    """Without pycocotools: `cxr eval` (its COCO numbers are pycocotools'), the command in $FEDCXR_CXR_COMMAND."""
    command = json.loads(os.environ.get("FEDCXR_CXR_COMMAND", "null") or "null")
    if not command:
        raise SystemExit("no pycocotools here and no FEDCXR_CXR_COMMAND to score with `cxr eval`")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(results, f)
    try:
        out = subprocess.run([*command, "eval", "--gt", data.file, "--dt", f.name, "--json", "--quiet"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return {name: max(0.0, float(v)) for name, v in zip(STAT_NAMES, json.loads(out)["stats"])}


def train(recipe, init, out):
    torch.manual_seed(recipe["seed"])
    torch.set_num_threads(recipe.get("threads") or torch.get_num_threads())
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(recipe)
    model.load_state_dict(torch.load(init, map_location="cpu"))
    trainset = CocoImages(recipe["data"]["train"])
    valset = CocoImages(recipe["data"]["val"])
    testset = CocoImages(recipe["data"]["test"])
    opt = recipe["optimizer"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"],
                                weight_decay=opt["weightDecay"])
    seed = recipe["seed"]
    rng = np.random.default_rng(seed)
    paired = recipe.get("draws") == "fedcxr"
    if paired:
        # torchvision's BalancedPositiveNegativeSampler draws torch.randperm(positives) then (negatives) per image,
        # RPN first, as fedcxr's samplers draw from their step stream: hand it fedcxr's permutations.
        step_stream = fedcxr_draws.FedcxrRng(0)
        has_boxes = [len(trainset.boxes_of[i]) > 0 for i in trainset.ids]

        def fedcxr_randperm(n, *args, **kwargs):
            return torch.tensor(step_stream.permutation(int(n)), dtype=torch.int64, device=kwargs.get("device"))

        torch.randperm = fedcxr_randperm
    batch = recipe["batchSize"]
    steps_per_epoch = math.ceil(len(trainset) / batch)
    history, best, global_step = [], None, 0
    steps_log = open(out / "steps.jsonl", "w")  # one line per optimizer step, as fedcxr's run folder has
    for epoch in range(recipe["epochs"]):
        model.train()
        started = time.time()
        order = fedcxr_draws.epoch_order(has_boxes, seed, epoch) if paired else rng.permutation(len(trainset))
        sums = {}
        for step in range(steps_per_epoch):
            lr = learning_rate(recipe, global_step, epoch, step / steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if paired:
                step_stream.state = fedcxr_draws.detector_seed(seed, epoch, step)
            images, targets = [], []
            for position, k in enumerate(order[step * batch:(step + 1) * batch], start=step * batch):
                draws = fedcxr_draws.augment_rng(seed, epoch, position) if paired else rng
                image, boxes, labels = augment(trainset.load(int(k)), recipe["augmentation"], draws)
                images.append(to_input(image))
                targets.append({"boxes": torch.from_numpy(boxes).float(), "labels": torch.from_numpy(labels)})
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            if opt.get("clipGradNorm"):
                torch.nn.utils.clip_grad_norm_(params, opt["clipGradNorm"])
            optimizer.step()
            values = {name: float(value.detach()) for name, value in {**losses, "loss": loss}.items()}
            steps_log.write(json.dumps({"globalStep": global_step, "epoch": epoch + 1, "step": step, "lr": lr,
                                        "losses": values}) + "\n")
            steps_log.flush()
            global_step += 1
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
        val = coco_stats(valset, predict(model, valset, batch))
        record = {
            "epoch": epoch + 1,
            "steps": steps_per_epoch,
            "lr": lr,
            "seconds": time.time() - started,
            "train": {k: v / steps_per_epoch for k, v in sums.items()},
            "val": val,
        }
        if best is None or val["AP"] > best[0]:
            best = (val["AP"], epoch + 1)
            torch.save(model.state_dict(), out / "best.pth")
            record["best"] = True
        history.append(record)
        record["evaluator"] = "pycocotools" if COCO is not None else "cxr eval"
        (out / "history.json").write_text(json.dumps(history, indent=1))
        print(json.dumps({"epoch": epoch + 1, "loss": record["train"]["loss"], "AP": val["AP"], "AP50": val["AP50"],
                          "seconds": round(record["seconds"], 1)}), flush=True)
    steps_log.close()
    model.load_state_dict(torch.load(out / "best.pth", map_location="cpu"))
    results = predict(model, testset, batch)
    (out / "test-results.json").write_text(json.dumps(results))
    (out / "summary.json").write_text(json.dumps({"best_epoch": best[1], "test": coco_stats(testset, results),
                                                  "torch": torch.__version__}, indent=1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["init", "train", "score"])
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--init")
    parser.add_argument("--out", required=True)
    parser.add_argument("--results", help="score: COCO results to score with pycocotools on the recipe's test split")
    args = parser.parse_args()
    recipe = json.loads(Path(args.recipe).read_text())
    if args.command == "init":
        torch.manual_seed(recipe["seed"])
        torch.save(build_model(recipe).state_dict(), args.out)
    elif args.command == "train":
        train(recipe, args.init, Path(args.out))
    else:
        testset = CocoImages(recipe["data"]["test"])
        Path(args.out).write_text(json.dumps(coco_stats(testset, json.loads(Path(args.results).read_text())), indent=1))


main()
