"""Reference for packages/core/src/eval/voc.ts: PASCAL VOC detection AP written after the VOC devkit's
VOCevaldet.m and VOCap.m (and py-faster-rcnn's voc_eval.py, its Python port), on randomized cases.

Run with the reference environment:
    V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/eval_voc_reference.py

Writes tools/reference/fixtures/eval/voc_cases.json: each case's COCO ground truth and detections, and the
per-class AP (VOC 2010 all-point and VOC 2007 11-point) at IoU 0.4 and 0.5, with the mean over classes that
have non-difficult ground truth. Differences from the devkit, on purpose and shared with voc.ts: continuous
IoU (no +1 pixel), and COCO `iscrowd` plays the part of VOC's `difficult`.
"""
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "fixtures" / "eval" / "voc_cases.json"


def iou_xywh(d, g):
    """pycocotools' IoU for a non-crowd pair: boxes are [x, y, w, h]."""
    iw = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
    ih = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
    if iw <= 0 or ih <= 0:
        return -np.inf  # the devkit skips boxes that do not overlap
    inter = iw * ih
    return inter / (d[2] * d[3] + g[2] * g[3] - inter)


def voc_ap(rec, prec, use_07):
    """VOCap.m (all points) or the VOC 2007 11-point mean, as voc_eval.py's voc_ap."""
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0.0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap += p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_eval_class(gt, dt, cat, thresh, use_07):
    """VOCevaldet.m for one class: returns AP (None without non-difficult ground truth)."""
    recs = {}
    npos = 0
    for img in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == img["id"] and a["category_id"] == cat]
        # The devkit keeps one list per image; normal boxes first here (voc.ts breaks equal-IoU ties that way).
        anns = [a for a in anns if not a["iscrowd"]] + [a for a in anns if a["iscrowd"]]
        recs[img["id"]] = {
            "bb": [a["bbox"] for a in anns],
            "diff": [bool(a["iscrowd"]) for a in anns],
            "det": [False] * len(anns),
        }
        npos += sum(1 for a in anns if not a["iscrowd"])
    dets = [d for d in dt if d["category_id"] == cat]
    # MATLAB's sort is stable: equal scores keep the detections' order.
    order = sorted(range(len(dets)), key=lambda k: -dets[k]["score"])
    tp = np.zeros(len(dets))
    fp = np.zeros(len(dets))
    for rank, k in enumerate(order):
        det = dets[k]
        r = recs[det["image_id"]]
        ovmax, jmax = -np.inf, -1
        for j, g in enumerate(r["bb"]):
            ov = iou_xywh(det["bbox"], g)
            if ov > ovmax:
                ovmax, jmax = ov, j
        if ovmax >= thresh:
            if not r["diff"][jmax]:
                if not r["det"][jmax]:
                    tp[rank] = 1
                    r["det"][jmax] = True
                else:
                    fp[rank] = 1
        else:
            fp[rank] = 1
    if npos == 0:
        return None
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / npos
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    # Detections that matched a difficult box add no point (0/0 before any hit): drop them, as the
    # devkit's max() ignores NaN.
    keep = ~np.isnan(prec)
    return voc_ap(rec[keep], prec[keep], use_07)


def random_case(rng, name, n_images, n_cats, crowd_rate=0.0, tie_scores=False, jitter=0.3, empty_cat=False):
    images = [{"id": i + 1, "width": 200, "height": 200, "file_name": f"{i + 1}.png"} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cats)]
    anns, dets = [], []
    for img in images:
        for _ in range(rng.integers(0, 4)):
            cat = int(rng.integers(1, n_cats + 1))
            if empty_cat and cat == n_cats:
                continue
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(8, 50, 2)
            box = [round(float(v), 3) for v in (x, y, w, h)]
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": cat, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": int(rng.uniform() < crowd_rate)})
            # Detections near it: a good one, sometimes a duplicate, sometimes a poor one.
            for _ in range(rng.integers(0, 3)):
                s = rng.uniform(-jitter, jitter, 4) * [w, h, w, h]
                dbox = [round(float(v), 3) for v in (x + s[0], y + s[1], max(2, w + s[2]), max(2, h + s[3]))]
                dets.append({"image_id": img["id"], "category_id": cat, "bbox": dbox, "score": 0.0})
        for _ in range(rng.integers(0, 3)):  # background false positives
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(8, 50, 2)
            dets.append({"image_id": img["id"], "category_id": int(rng.integers(1, n_cats + 1)),
                         "bbox": [round(float(v), 3) for v in (x, y, w, h)], "score": 0.0})
    for d in dets:
        d["score"] = round(float(rng.choice([0.2, 0.5, 0.8])), 3) if tie_scores else round(float(rng.uniform()), 6)
    return {"name": name, "gt": {"images": images, "annotations": anns, "categories": cats}, "dt": dets}


def main():
    rng = np.random.default_rng(20261203)
    cases = [
        random_case(rng, "two classes, distinct scores", 12, 2),
        random_case(rng, "three classes, tied scores", 15, 3, tie_scores=True),
        random_case(rng, "difficult (crowd) boxes", 15, 2, crowd_rate=0.3),
        random_case(rng, "loose detections around the threshold", 20, 2, jitter=0.45),
        random_case(rng, "recall steps of tenths", 10, 1, jitter=0.1),
        random_case(rng, "a class without ground truth", 10, 3, empty_cat=True),
    ]
    for case in cases:
        case["expected"] = {}
        for thresh in (0.4, 0.5):
            for method, use_07 in (("voc2010", False), ("voc2007", True)):
                aps = {c["id"]: voc_eval_class(case["gt"], case["dt"], c["id"], thresh, use_07)
                       for c in case["gt"]["categories"]}
                present = [ap for ap in aps.values() if ap is not None]
                case["expected"][f"{method}@{thresh}"] = {
                    "per_category": {str(k): v for k, v in aps.items()},
                    "mAP": float(np.mean(present)) if present else 0.0,
                }
    OUT.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
    for case in cases:
        print(case["name"], {k: round(v["mAP"], 4) for k, v in case["expected"].items()})


main()
