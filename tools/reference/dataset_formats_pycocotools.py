"""Loads annotations.json files that `cxr dataset import` wrote (one per source format) with pycocotools and
prints what pycocotools sees, for packages/cli/src/commands/dataset-hospital.test.ts to compare with the file:
images, annotations per category, every box, patients, and the ground truth scored against itself by COCOeval.
Run: $REFERENCE_VENV/bin/python tools/reference/dataset_formats_pycocotools.py a/annotations.json b/annotations.json"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

out = {}
for path in sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
    cats = gt.loadCats(gt.getCatIds())
    anns = gt.loadAnns(gt.getAnnIds())
    result = {
        "images": len(gt.getImgIds()),
        "annotations": len(anns),
        "categories": [c["name"] for c in cats],
        "per_category": {c["name"]: len(gt.getAnnIds(catIds=[c["id"]])) for c in cats},
        "boxes": sorted([[a["image_id"], a["category_id"], *a["bbox"]] for a in anns]),
        "patients": len({img.get("patient_id") for img in gt.imgs.values()}),
        "ap_gt_as_detections": None,
    }
    if anns:
        dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in anns]
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(dets), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        result["ap_gt_as_detections"] = float(ev.stats[0])
    out[path] = result
print(json.dumps(out))
