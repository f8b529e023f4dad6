"""PyTorch reference for bench/engine: the same shapes as engine-bench.ts, timed the same way.

Prints one JSON object: {"torch": version, "threads": n, "results": {name: best wall ms}, "cpu": {name: best CPU ms}}.
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    samples = []
    cpu = []
    for _ in range(reps):
        start = time.perf_counter()
        start_cpu = time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        samples.append((time.perf_counter() - start) * 1000)
    # best of the repetitions: the least disturbed by other work on a shared machine. CPU time (all threads)
    # measures the work itself, which load from other processes barely changes.
    return min(samples), min(cpu)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = args.batch
    results = {}
    cpu_results = {}

    # conv: 3x3, 64 -> 64, 56x56, stride 1, padding 1 (NCHW, PyTorch's default layout)
    x = torch.randn(n, 64, 56, 56)
    w = torch.randn(64, 64, 3, 3)
    with torch.no_grad():
        results["conv3x3"], cpu_results["conv3x3"] = timed(lambda: F.conv2d(x, w, padding=1), 2, args.reps)

    a = torch.randn(1024, 1024)
    with torch.no_grad():
        results["matmul1024"], cpu_results["matmul1024"] = timed(lambda: a @ a, 2, args.reps)

    # ResNet-50 bottleneck (conv2_x): 256 -> 64 (1x1) -> 64 (3x3) -> 256 (1x1), BN (batch stats) + ReLU,
    # identity shortcut; forward + backward for the input and every parameter.
    def param(*shape):
        return (torch.randn(*shape) * 0.05).requires_grad_()

    p = {
        "w1": param(64, 256, 1, 1),
        "w2": param(64, 64, 3, 3),
        "w3": param(256, 64, 1, 1),
        "g1": torch.ones(64, requires_grad=True),
        "b1": torch.zeros(64, requires_grad=True),
        "g2": torch.ones(64, requires_grad=True),
        "b2": torch.zeros(64, requires_grad=True),
        "g3": torch.ones(256, requires_grad=True),
        "b3": torch.zeros(256, requires_grad=True),
    }
    xb = torch.randn(n, 256, 56, 56, requires_grad=True)

    def block():
        h = F.relu(F.batch_norm(F.conv2d(xb, p["w1"]), None, None, p["g1"], p["b1"], training=True, eps=1e-5))
        h = F.relu(F.batch_norm(F.conv2d(h, p["w2"], padding=1), None, None, p["g2"], p["b2"], training=True, eps=1e-5))
        h = F.batch_norm(F.conv2d(h, p["w3"]), None, None, p["g3"], p["b3"], training=True, eps=1e-5)
        return F.relu(h + xb)

    def train_step():
        out = block()
        grads = torch.autograd.grad(out.square().mean(), [xb, *p.values()])
        return grads

    results["bottleneck_train"], cpu_results["bottleneck_train"] = timed(train_step, 1, args.reps)
    with torch.no_grad():
        results["bottleneck_forward"], cpu_results["bottleneck_forward"] = timed(block, 1, args.reps)

    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": n, "results": results, "cpu": cpu_results}))


if __name__ == "__main__":
    main()
