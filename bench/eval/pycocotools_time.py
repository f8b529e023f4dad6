"""Times pycocotools' COCOeval on the files the eval benchmark wrote; prints one JSON line.

Usage: python pycocotools_time.py <gt.json> <dt.json>
The JSON parse is not timed (the TypeScript side is also timed from parsed objects).
"""
import contextlib
import io
import json
import sys
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    with open(sys.argv[1]) as f:
        gt = json.load(f)
    with open(sys.argv[2]) as f:
        dt = json.load(f)
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt)
        ev = COCOeval(coco_gt, coco_dt, 'bbox')
        t1 = time.perf_counter()
        ev.evaluate()
        t2 = time.perf_counter()
        ev.accumulate()
        t3 = time.perf_counter()
        ev.summarize()
        t4 = time.perf_counter()
    times = {'index_s': t1 - t0, 'evaluate_s': t2 - t1, 'accumulate_s': t3 - t2, 'summarize_s': t4 - t3,
             'total_s': t4 - t0}
    print(json.dumps({**times, 'stats': [float(s) for s in ev.stats]}))


if __name__ == '__main__':
    main()
