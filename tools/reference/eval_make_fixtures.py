"""Parity fixtures for packages/core/src/eval: pycocotools' COCOeval on randomized cases, one per trap.

Run with the reference environment:
    V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/eval_make_fixtures.py

Writes tools/reference/fixtures/eval/coco_cases.json: each case holds its inputs in a compact form
(so the TypeScript test evaluates exactly the same boxes) and what pycocotools computed:
the 12 stats, per-category AP/AP50/AP75/AR100, checksums of the full precision/recall/scores arrays,
and the full precision curves (IoU .5, area all, maxDets 100) of the first categories.

Traps covered: crowd ground truth, more than 100 / 10 detections per image, small/medium/large with the
stored area differing from w*h and lying exactly on the range edges, images without ground truth (with
and without detections), categories with ground truth but no detections, with detections but no ground
truth and with neither, tied scores and duplicate boxes, ground-truth id 0, image id 0, detections of
categories absent from the ground truth, zero-size boxes, and custom IoU thresholds (VinBigData's 0.4).
"""

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = Path(__file__).resolve().parent / 'fixtures' / 'eval' / 'coco_cases.json'


def r1(x):
    """One decimal keeps the JSON small; the evaluator sees exactly these numbers on both sides."""
    return float(round(float(x), 1))


def make_case(name, seed, *, n_images=20, cat_ids=(1, 2, 3), lam_gt=1.5, p_crowd=0.05, p_detect=0.8,
              n_fp=1.0, size_range=(6, 300), score_levels=None, empty_frac=0.2, overflow=0,
              area_mode='mask', cats_without_dets=(), cats_without_gt=(), unknown_cat_dets=0,
              gt_id_start=1, image_id_zero=False, perfect=False, dups=0.0, zero_size=0, params=None):
    rng = np.random.default_rng(seed)
    image_ids = list(rng.choice(np.arange(1, 10 * n_images + 1), size=n_images, replace=False).tolist())
    if image_id_zero:
        image_ids[0] = 0
    order = list(rng.permutation(len(image_ids)))
    images = [int(image_ids[i]) for i in order]
    cats = [[int(c), f'class_{c}'] for c in rng.permutation(list(cat_ids)).tolist()]
    gt, dt = [], []
    next_gt = gt_id_start
    empty = set(rng.choice(images, size=int(round(empty_frac * n_images)), replace=False).tolist()) if empty_frac else set()
    gt_cats = [c for c in cat_ids if c not in cats_without_gt]

    def box(size_lo, size_hi):
        w = math.exp(rng.uniform(math.log(size_lo), math.log(size_hi)))
        h = w * math.exp(rng.uniform(-0.5, 0.5))
        x, y = rng.uniform(0, 600), rng.uniform(0, 600)
        return [r1(x), r1(y), r1(max(w, 1.0)), r1(max(h, 1.0))]

    def score():
        if score_levels is not None:
            return float(rng.choice(score_levels))
        return float(round(rng.uniform(0.01, 1.0), 3))

    for img in images:
        n = 0 if img in empty else rng.poisson(lam_gt)
        for _ in range(n):
            cat = int(rng.choice(gt_cats))
            b = box(*size_range)
            if area_mode == 'mask':
                area = r1(b[2] * b[3] * rng.uniform(0.4, 1.0))
            elif area_mode == 'edges':
                area = float(rng.choice([1024.0, 9216.0, 1023.9, 9216.1, 0.0, r1(b[2] * b[3])]))
            else:
                area = r1(b[2] * b[3])
            crowd = int(rng.uniform() < p_crowd)
            if crowd:  # crowd regions are big and swallow several detections
                b = [b[0], b[1], r1(b[2] * 2 + 50), r1(b[3] * 2 + 50)]
                area = r1(b[2] * b[3] * 0.7)
            gt.append([next_gt, int(img), cat, *b, area, crowd])
            next_gt += 1
            if cat in cats_without_dets:
                continue
            if perfect:
                dt.append([int(img), cat, *b, score()])
                continue
            if rng.uniform() < p_detect:
                for _ in range(1 + rng.poisson(0.6)):
                    jit = rng.normal(0, 0.12, size=4)
                    d = [r1(b[0] + jit[0] * b[2]), r1(b[1] + jit[1] * b[3]),
                         r1(max(b[2] * (1 + jit[2]), 1.0)), r1(max(b[3] * (1 + jit[3]), 1.0))]
                    dcat = cat if rng.uniform() < 0.9 else int(rng.choice(cat_ids))
                    dt.append([int(img), dcat, *d, score()])
                    if rng.uniform() < dups:
                        dt.append([int(img), dcat, *d, dt[-1][-1]])
        for _ in range(rng.poisson(n_fp)):
            cat = int(rng.choice(cat_ids))
            if cat in cats_without_dets:
                continue
            dt.append([int(img), cat, *box(*size_range), score()])
    for _ in range(overflow):
        img = int(rng.choice(images))
        cat = int(rng.choice([c for c in cat_ids if c not in cats_without_dets]))
        base = box(20, 200)
        gt.append([next_gt, img, cat, *base, r1(base[2] * base[3]), 0])
        next_gt += 1
        for _ in range(int(rng.integers(101, 160))):
            jit = rng.normal(0, 0.3, size=4)
            d = [r1(base[0] + jit[0] * 30), r1(base[1] + jit[1] * 30), r1(base[2] * (1 + abs(jit[2]))),
                 r1(base[3] * (1 + abs(jit[3])))]
            dt.append([img, cat, *d, score()])
    for _ in range(unknown_cat_dets):
        dt.append([int(rng.choice(images)), 99, *box(*size_range), score()])
    for _ in range(zero_size):
        b = box(*size_range)
        dt.append([int(rng.choice(images)), int(rng.choice(cat_ids)), b[0], b[1], 0.0, b[3], score()])
    order = rng.permutation(len(dt))
    dt = [dt[i] for i in order]
    case = {'name': name, 'images': images, 'categories': cats, 'gt': gt, 'dt': dt}
    if params:
        case['params'] = params
    return case


def to_coco(case):
    gt = {
        'images': [{'id': i, 'file_name': f'{i}.png', 'width': 1024, 'height': 1024} for i in case['images']],
        'categories': [{'id': c, 'name': n} for c, n in case['categories']],
        'annotations': [
            {'id': a[0], 'image_id': a[1], 'category_id': a[2], 'bbox': a[3:7], 'area': a[7], 'iscrowd': a[8]}
            for a in case['gt']
        ],
    }
    dt = [{'image_id': d[0], 'category_id': d[1], 'bbox': d[2:6], 'score': d[6]} for d in case['dt']]
    return gt, dt


def weighted_sum(array):
    flat = array.reshape(-1)
    weights = (np.arange(flat.size) % 97) + 1
    return math.fsum((flat * weights).tolist())


def evaluate(case):
    gt, dt = to_coco(case)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt)
        ev = COCOeval(coco_gt, coco_dt, 'bbox')
        if 'params' in case:
            if 'iouThrs' in case['params']:
                ev.params.iouThrs = np.array(case['params']['iouThrs'], dtype=np.float64)
            if 'imgIds' in case['params']:
                ev.params.imgIds = case['params']['imgIds']
            if 'catIds' in case['params']:
                ev.params.catIds = case['params']['catIds']
            for key in ('recThrs', 'maxDets', 'areaRng'):
                if key in case['params']:
                    setattr(ev.params, key, np.array(case['params'][key], dtype=np.float64) if key == 'recThrs'
                            else case['params'][key])
            if 'useCats' in case['params']:
                ev.params.useCats = case['params']['useCats']
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    p = ev.params
    prec, rec, sc = ev.eval['precision'], ev.eval['recall'], ev.eval['scores']
    T, R, K, A, M = prec.shape
    per_cat = []
    for k in range(K):
        def mean_valid(s):
            s = s[s > -1]
            return float(np.mean(s)) if s.size else -1.0
        t50 = np.where(p.iouThrs == 0.5)[0]
        t75 = np.where(p.iouThrs == 0.75)[0]
        per_cat.append([
            mean_valid(prec[:, :, k, 0, -1]),
            mean_valid(prec[t50, :, k, 0, -1]) if t50.size else -1.0,
            mean_valid(prec[t75, :, k, 0, -1]) if t75.size else -1.0,
            mean_valid(rec[:, k, 0, -1]),
        ])
    curves = [prec[0, :, k, 0, -1].tolist() for k in range(min(K, 2))]
    return {
        'imgIds': [int(i) for i in p.imgIds],
        'catIds': [int(c) for c in p.catIds],
        'counts': [int(T), int(R), int(K), int(A), int(M)],
        'stats': [float(s) for s in ev.stats],
        'per_category': per_cat,
        'precision_sum': [[[math.fsum(prec[:, :, k, a, m].reshape(-1).tolist()) for m in range(M)]
                           for a in range(A)] for k in range(K)],
        'recall_sum': [[[math.fsum(rec[:, k, a, m].tolist()) for m in range(M)] for a in range(A)]
                       for k in range(K)],
        'precision_wsum': weighted_sum(prec),
        'recall_wsum': weighted_sum(rec),
        'scores_wsum': weighted_sum(sc),
        'curves_iou50': curves,
    }


def box_iou(d, g):
    """pycocotools' bbIou for a non-crowd pair (Python floats are IEEE doubles, like JavaScript numbers)."""
    w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if w <= 0:
        return 0.0
    h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if h <= 0:
        return 0.0
    i = w * h
    return i / (d[2] * d[3] + g[2] * g[3] - i)


def box_ioa(d, g):
    w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if w <= 0:
        return 0.0
    h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if h <= 0:
        return 0.0
    return (w * h) / (d[2] * d[3])


def per_image(case):
    """{image: (non-crowd gts, crowd gts, predictions sorted by descending score, stable)}"""
    cats = {c for c, _ in case['categories']}
    images = sorted(set(case['images']))
    out = {i: ([], [], []) for i in images}
    for a in case['gt']:
        if a[1] in out and a[2] in cats:
            out[a[1]][1 if a[8] else 0].append((a[2], a[3:7]))
    for d in case['dt']:
        if d[1] in cats:
            out[d[0]][2].append((d[1], d[2:6], d[6]))
    for i in images:
        preds = out[i][2]
        order = np.argsort([-p[2] for p in preds], kind='mergesort')
        out[i] = (out[i][0], out[i][1], [preds[j] for j in order])
    return out


def rsna_reference(case, thresholds=np.linspace(0.4, 0.75, 8)):
    """Kaggle RSNA Pneumonia Detection metric (evaluation page wording): see packages/core/src/eval/rsna.ts."""
    per_t = np.zeros(len(thresholds))
    image_scores = []
    skipped = 0
    for gts, _, preds in per_image(case).values():
        if not gts and not preds:
            skipped += 1
            continue
        precisions = []
        for t in thresholds:
            if not gts:
                precisions.append(0.0)
                continue
            matched = [False] * len(gts)
            tp = fp = 0
            for cat, box, _ in preds:
                best, best_iou = -1, -math.inf
                for g, (gcat, gbox) in enumerate(gts):
                    if matched[g] or gcat != cat:
                        continue
                    iou = box_iou(box, gbox)
                    if iou > best_iou:
                        best, best_iou = g, iou
                if best >= 0 and best_iou > t:
                    matched[best] = True
                    tp += 1
                else:
                    fp += 1
            fn = len(gts) - tp
            precisions.append(tp / (tp + fp + fn))
        per_t += np.array(precisions)
        total = 0.0
        for v in precisions:
            total += v
        image_scores.append(total / len(thresholds))
    total = 0.0
    for v in image_scores:
        total += v
    n = len(image_scores)
    return {'map': total / n if n else 0.0, 'perThreshold': (per_t / n).tolist() if n else [0.0] * len(thresholds),
            'imagesScored': n, 'imagesSkipped': skipped}


def froc_reference(case, hit):
    """FROC curve as MONAI's compute_froc_curve_data / compute_froc_score define it, for boxes."""
    fp_probs, tp_probs = [], []
    data = per_image(case)
    for gts, crowds, preds in data.values():
        best = [None] * len(gts)
        for cat, box, score in preds:
            target, target_iou = -1, -math.inf
            for g, (gcat, gbox) in enumerate(gts):
                if gcat != cat:
                    continue
                iou = box_iou(box, gbox)
                hits = iou >= hit['threshold'] if hit['kind'] == 'iou' else center_inside(box, gbox)
                if hits and iou > target_iou:
                    target, target_iou = g, iou
            if target >= 0:
                best[target] = score if best[target] is None else max(best[target], score)
                continue
            excluded = any(
                (box_ioa(box, cbox) >= hit['threshold'] if hit['kind'] == 'iou' else center_inside(box, cbox))
                for ccat, cbox in crowds if ccat == cat)
            if not excluded:
                fp_probs.append(score)
        tp_probs.extend(0.0 if b is None else b for b in best)
    fp_probs = np.array(fp_probs, dtype=np.float64)
    tp_probs = np.array(tp_probs, dtype=np.float64)
    all_probs = sorted(set(fp_probs.tolist() + tp_probs.tolist()))
    total_fps, total_tps = [], []
    for thresh in all_probs[1:]:
        total_fps.append((fp_probs >= thresh).sum())
        total_tps.append((tp_probs >= thresh).sum())
    total_fps.append(0)
    total_tps.append(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        fps_per_image = np.asarray(total_fps) / float(len(data))
        sensitivity = np.asarray(total_tps) / float(len(tp_probs))
    rates = [0.125, 0.25, 0.5, 1, 2, 4, 8]
    sens = np.interp(rates, fps_per_image[::-1], sensitivity[::-1])
    return {'sensitivities': sens.tolist(), 'score': float(np.mean(sens)), 'points': len(fps_per_image),
            'fps_sum': math.fsum(fps_per_image.tolist()), 'sens_sum': math.fsum(sensitivity.tolist()),
            'numTargets': len(tp_probs)}


def center_inside(d, g):
    cx, cy = d[0] + d[2] / 2, d[1] + d[3] / 2
    return g[0] <= cx <= g[0] + g[2] and g[1] <= cy <= g[1] + g[3]


def cases():
    out = [
        make_case('basic', 1),
        make_case('crowd', 2, p_crowd=0.35, lam_gt=2.0, n_fp=2.0),
        make_case('maxdets_overflow', 3, n_images=8, overflow=4, lam_gt=3.0, n_fp=12.0),
        make_case('area_ranges_mask_area', 4, size_range=(10, 140), lam_gt=3.0),
        make_case('area_ranges_on_edges', 5, size_range=(20, 120), area_mode='edges', lam_gt=3.0),
        make_case('empty_images_with_dets', 6, empty_frac=0.6, n_fp=2.5),
        make_case('undetected_and_absent_categories', 7, cat_ids=(1, 2, 3, 4, 5), cats_without_dets=(2,),
                  cats_without_gt=(4,)),
        make_case('category_never_used', 8, cat_ids=(2, 5, 9), cats_without_dets=(9,), cats_without_gt=(9,)),
        make_case('score_ties', 9, score_levels=[0.3, 0.5, 0.5, 0.9], dups=0.3, lam_gt=2.0, n_fp=2.0),
        make_case('all_scores_equal', 10, score_levels=[0.5], dups=0.2, lam_gt=2.0, n_fp=1.5),
        make_case('gt_id_zero_image_id_zero', 11, gt_id_start=0, image_id_zero=True, lam_gt=2.5),
        make_case('unknown_category_dets', 12, unknown_cat_dets=15),
        make_case('perfect', 13, perfect=True, n_fp=0.0),
        make_case('no_ground_truth_at_all', 14, lam_gt=0.0, empty_frac=0.0, n_fp=2.0),
        make_case('zero_size_boxes', 15, zero_size=12),
        make_case('iou_0.4_vinbigdata', 16, lam_gt=2.0, params={'iouThrs': [0.4]}),
        make_case('custom_iou_list', 17, lam_gt=2.0, params={'iouThrs': [0.3, 0.5, 0.7]}),
        make_case('many_categories', 18, n_images=30, cat_ids=tuple(range(1, 15)), lam_gt=3.0, n_fp=3.0),
        make_case('larger', 19, n_images=120, cat_ids=(1, 2, 3, 4), lam_gt=2.0, n_fp=3.0, p_crowd=0.05,
                  score_levels=[round(x, 2) for x in np.linspace(0.05, 1.0, 20)], dups=0.05, overflow=1),
    ]
    subset = make_case('subset_images_and_categories', 36, n_images=30, cat_ids=(1, 2, 3, 4), lam_gt=2.0, n_fp=2.0)
    subset['params'] = {'imgIds': sorted(subset['images'])[::3], 'catIds': [4, 2, 11]}
    out.append(subset)
    agnostic = make_case('class_agnostic_usecats_0', 37, n_images=25, cat_ids=(1, 2, 3), lam_gt=2.5, n_fp=2.0,
                         score_levels=[0.2, 0.5, 0.8], dups=0.2, p_crowd=0.1, unknown_cat_dets=4)
    agnostic['params'] = {'useCats': 0}
    out.append(agnostic)
    custom = make_case('custom_maxdets_recthrs_arearng', 38, n_images=12, cat_ids=(1, 2), lam_gt=3.0, n_fp=8.0,
                       overflow=1)
    custom['params'] = {'maxDets': [20, 1, 5], 'recThrs': np.linspace(0.0, 1.0, 11).tolist(),
                        'areaRng': [[0, 1e10], [0, 2000], [2000, 20000], [20000, 1e10]]}
    out.append(custom)
    for s in range(20, 36):  # random mixtures of every trap
        rng = np.random.default_rng(1000 + s)
        out.append(make_case(
            f'mixed_{s}', s, n_images=int(rng.integers(5, 30)), cat_ids=tuple(int(c) for c in rng.choice(
                np.arange(1, 20), size=int(rng.integers(1, 6)), replace=False)),
            lam_gt=float(rng.uniform(0.3, 4)), p_crowd=float(rng.choice([0, 0.1, 0.3])),
            p_detect=float(rng.uniform(0.3, 1)), n_fp=float(rng.uniform(0, 4)),
            size_range=(float(rng.uniform(2, 30)), float(rng.uniform(40, 400))),
            score_levels=[0.2, 0.4, 0.6, 0.8] if rng.uniform() < 0.4 else None,
            empty_frac=float(rng.choice([0, 0.2, 0.5])), overflow=int(rng.choice([0, 0, 1])),
            area_mode=str(rng.choice(['mask', 'edges', 'box'])), dups=float(rng.choice([0, 0.2])),
            gt_id_start=int(rng.choice([0, 1, 1])), unknown_cat_dets=int(rng.choice([0, 3]))))
    return out


def nan_to_null(value):
    """JSON has no NaN (FROC without targets divides by zero, as MONAI does): write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_to_null(v) for v in value]
    return value


def main():
    p = COCOeval(iouType='bbox').params
    result = {
        'generator': 'tools/reference/eval_make_fixtures.py',
        'numpy': np.__version__,
        'default_params': {'iouThrs': p.iouThrs.tolist(), 'recThrs': p.recThrs.tolist()},
        'cases': [],
    }
    for case in cases():
        if not case['dt']:
            raise SystemExit(f'{case["name"]}: pycocotools cannot load an empty result list')
        case['expected'] = evaluate(case)
        case['expected']['rsna'] = rsna_reference(case)
        case['expected']['froc'] = {
            'iou50': froc_reference(case, {'kind': 'iou', 'threshold': 0.5}),
            'iou20': froc_reference(case, {'kind': 'iou', 'threshold': 0.2}),
            'center': froc_reference(case, {'kind': 'center'}),
        }
        result['cases'].append(case)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(nan_to_null(result), separators=(',', ':'), allow_nan=False))
    print(f'wrote {OUT} ({OUT.stat().st_size} bytes, {len(result["cases"])} cases)')


if __name__ == '__main__':
    main()
