"""PyTorch side of bench/backbones: the same backbones (torchvision parts, as in
tools/reference/backbone_make_fixtures.py), eval forward and a training step (forward + backward of
sum over levels of mean(map^2)) at the given size; prints one JSON document of best-of-reps milliseconds."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "reference"))
from backbone_make_fixtures import build, synthetic_images  # noqa: E402


def best_ms(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    results = {}
    for arch in args["archs"]:
        model = build(arch)
        batch, height, width = args["batch"], args["height"], args["width"]
        images = synthetic_images(batch, height, width)

        def forward():
            with torch.no_grad():
                model(images)

        entry = {"forward_ms": best_ms(forward, args["reps"])}
        if arch in args["train_archs"]:
            train_images = synthetic_images(batch, args["train_height"], args["train_width"])

            def step():
                model.zero_grad()
                outputs = model(train_images)
                loss = sum((v**2).mean() for v in outputs.values())
                loss.backward()

            entry["train_step_ms"] = best_ms(step, args["reps"])
        results[arch] = entry
    print(json.dumps({"torch": torch.__version__, "threads": args["threads"], "results": results}))


if __name__ == "__main__":
    main()
