"""Loads the annotations.json that `cxr dataset import` wrote for a fixed phantom (packages/cli/src/dataset/
import.test.ts keeps it byte-identical) with pycocotools, checks what COCO()/loadRes/COCOeval need, and scores
the ground truth against itself. Writes fixtures/dataset/roundtrip/pycocotools.json for the TypeScript test.
Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/dataset_pycocotools_roundtrip.py"""
import contextlib
import io
import json
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

folder = Path(__file__).parent / "fixtures" / "dataset" / "roundtrip"
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(str(folder / "annotations.json"))
cats = gt.loadCats(gt.getCatIds())
anns = gt.loadAnns(gt.getAnnIds())
for ann in anns:
    assert ann["id"] >= 1 and ann["iscrowd"] == 0 and ann["area"] > 0, ann
    img = gt.imgs[ann["image_id"]]
    x, y, w, h = ann["bbox"]
    assert 0 <= x and 0 <= y and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6, ann
dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in anns]
with contextlib.redirect_stdout(io.StringIO()):
    dt = gt.loadRes(dets)
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
result = {
    "images": len(gt.getImgIds()),
    "annotations": len(anns),
    "categories": [c["name"] for c in cats],
    "annotations_per_category": {c["name"]: len(gt.getAnnIds(catIds=[c["id"]])) for c in cats},
    "patients": len({img["patient_id"] for img in gt.imgs.values()}),
    "stats_gt_as_detections": [float(s) for s in ev.stats],
}
(folder / "pycocotools.json").write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
