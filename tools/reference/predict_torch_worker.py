"""torchvision side of bench/predict: Faster R-CNN ResNet-50-FPN on the CPU, timed image by image on request.

Usage: python tools/reference/predict_torch_worker.py <weights.safetensors> <images.bin> <count> <size> <threads>

images.bin holds <count> images, float32 little-endian, HWC, <size>×<size>×3 in [0, 1] (the same bytes the
Node side predicts on). The model is predict_bench_weights.build_model() with those weights, in eval mode,
torch.set_num_threads(<threads>), under torch.inference_mode(). The worker reads one command per line on
stdin and answers one JSON line on stdout:
  "run <i>"   → {"total_ms", "pieces_ms": {...}, "detections": n, "top": [[score, label, x1, y1, x2, y2], ...]}
  "ablate <i> <batch> <batches>" → AblationCAM's cost on image i: one normal pass, then <batches> batches of
                <batch> ablated copies of the FPN features (one channel each set to -1000, channels in order
                from level '0' channel 0, as pytorch-grad-cam's AblationLayerFasterRCNN) through the RPN and ROI
                heads and postprocess, each scored by FasterRCNNBoxScoreTarget for the top detection:
                {"setup_ms", "batch_ms": [...], "channels": 1280, "original_score", "scores": [...],
                 "tops": [[score, label, x1, y1, x2, y2] of each pass's top detection]}
  "quit"      → exits.
The pass is GeneralizedRCNN.forward's eval path written out (transform, backbone, rpn, roi_heads,
postprocess), so its pieces can be timed; forward hooks split the RPN head convs and the RoI pooling /
box head from the selection logic around them.
"""
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predict_bench_weights import build_model  # noqa: E402


def main(weights: str, images_path: str, count: int, size: int, threads: int) -> None:
    torch.set_num_threads(threads)
    model = build_model(size=size)
    model.load_state_dict(load_file(weights))
    model.eval()
    pixels = np.fromfile(images_path, dtype="<f4").reshape(count, size, size, 3)
    images = [torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1))) for p in pixels]

    spans: dict = {}

    def timed(module, key):
        module.register_forward_pre_hook(lambda *_: spans.__setitem__(key + "_start", time.perf_counter()))
        module.register_forward_hook(lambda *_: spans.__setitem__(key, spans.get(key, 0.0) + time.perf_counter() - spans[key + "_start"]))

    timed(model.rpn.head, "rpn_head")
    timed(model.roi_heads.box_roi_pool, "roi_align")
    timed(model.roi_heads.box_head, "box_head")
    timed(model.roi_heads.box_predictor, "box_predictor")

    def run(i: int) -> dict:
        spans.clear()
        image = images[i]
        with torch.inference_mode():
            t0 = time.perf_counter()
            batch, _ = model.transform([image])
            t1 = time.perf_counter()
            features = model.backbone(batch.tensors)
            t2 = time.perf_counter()
            proposals, _ = model.rpn(batch, features)
            t3 = time.perf_counter()
            detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
            t4 = time.perf_counter()
            detections = model.transform.postprocess(detections, batch.image_sizes, [tuple(image.shape[-2:])])
            t5 = time.perf_counter()
        ms = lambda s: round(s * 1000, 3)  # noqa: E731
        roi_net = spans["roi_align"] + spans["box_head"] + spans["box_predictor"]
        d = detections[0]
        top = [[float(d["scores"][k]), int(d["labels"][k]), *[float(v) for v in d["boxes"][k]]] for k in range(min(5, len(d["scores"])))]
        return {
            "total_ms": ms(t5 - t0),
            "pieces_ms": {
                "transform": ms(t1 - t0),
                "backbone_fpn": ms(t2 - t1),
                "rpn_head": ms(spans["rpn_head"]),
                "proposals": ms(t3 - t2 - spans["rpn_head"]),
                "roi_align": ms(spans["roi_align"]),
                "box_head": ms(spans["box_head"] + spans["box_predictor"]),
                "postprocess": ms(t4 - t3 - roi_net + t5 - t4),
            },
            "detections": len(d["scores"]),
            "top": top,
        }

    def box_score(box, label, d) -> float:
        # pytorch-grad-cam's FasterRCNNBoxScoreTarget for one target box.
        if len(d["boxes"]) == 0:
            return 0.0
        ious = box_iou(box[None], d["boxes"])[0]
        best = int(ious.argmax())
        if float(ious[best]) > 0.5 and int(d["labels"][best]) == label:
            return float(ious[best]) + float(d["scores"][best])
        return 0.0

    def ablate(i: int, batch_size: int, batches: int) -> dict:
        image = images[i]
        original_size = [tuple(image.shape[-2:])]
        with torch.inference_mode():
            t0 = time.perf_counter()
            batch, _ = model.transform([image])
            features = model.backbone(batch.tensors)
            proposals, _ = model.rpn(batch, features)
            detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
            d = model.transform.postprocess(detections, batch.image_sizes, original_size)[0]
            box, label = d["boxes"][0], int(d["labels"][0])
            original = box_score(box, label, d)
            setup = time.perf_counter() - t0
            names = list(features.keys())
            per_level = features[names[0]].shape[1]
            batch_ms, scores, tops = [], [], []
            for k in range(batches):
                t = time.perf_counter()
                channels = range(k * batch_size, (k + 1) * batch_size)
                ablated = {n: f.repeat(batch_size, 1, 1, 1) for n, f in features.items()}
                for j, c in enumerate(channels):
                    ablated[names[c // per_level]][j, c % per_level] = -1000.0
                images_batch = ImageList(batch.tensors.expand(batch_size, -1, -1, -1), batch.image_sizes * batch_size)
                proposals, _ = model.rpn(images_batch, ablated)
                out, _ = model.roi_heads(ablated, proposals, images_batch.image_sizes)
                out = model.transform.postprocess(out, images_batch.image_sizes, original_size * batch_size)
                scores += [box_score(box, label, o) for o in out]
                tops += [[float(o["scores"][0]), int(o["labels"][0]), *map(float, o["boxes"][0])] if len(o["scores"]) else [] for o in out]
                batch_ms.append(round((time.perf_counter() - t) * 1000, 3))
        return {"setup_ms": round(setup * 1000, 3), "batch_ms": batch_ms, "channels": per_level * len(names),
                "original_score": original, "scores": scores, "tops": tops}

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "run":
            print(json.dumps(run(int(command[1]))), flush=True)
        elif command[0] == "ablate":
            print(json.dumps(ablate(int(command[1]), int(command[2]), int(command[3]))), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {line.strip()}"}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
