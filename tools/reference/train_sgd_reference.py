"""Writes the PyTorch reference for fedcxr's SGD optimizer (packages/core/src/train/optimizer.test.ts).

torch.optim.SGD(momentum=0.9, nesterov=True, weight_decay=0.1) on two parameters, one of them in a
no-decay group (as BN parameters are), with the learning rate changed between steps (warm-up).
Run: V=$(bash /work/shared/tools/python-reference-env.sh); $V/bin/python tools/reference/train_sgd_reference.py
"""
import json
import pathlib

import torch

torch.manual_seed(0)
decayed = torch.nn.Parameter(torch.randn(2, 3, dtype=torch.float64))
plain = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
initial = {"decayed": decayed.detach().flatten().tolist(), "plain": plain.detach().flatten().tolist()}
optimizer = torch.optim.SGD(
    [{"params": [decayed], "weight_decay": 0.1}, {"params": [plain], "weight_decay": 0.0}],
    lr=0.05, momentum=0.9, nesterov=True, dampening=0,
)
lrs = [0.05, 0.2, 0.1, 0.1, 0.01]
steps = []
for lr in lrs:
    for group in optimizer.param_groups:
        group["lr"] = lr
    grads = {"decayed": torch.randn(2, 3, dtype=torch.float64), "plain": torch.randn(4, dtype=torch.float64)}
    decayed.grad = grads["decayed"].clone()
    plain.grad = grads["plain"].clone()
    optimizer.step()
    steps.append({
        "lr": lr,
        "grads": {k: v.flatten().tolist() for k, v in grads.items()},
        "after": {"decayed": decayed.detach().flatten().tolist(), "plain": plain.detach().flatten().tolist()},
    })
out = pathlib.Path(__file__).parent / "fixtures" / "train" / "sgd_nesterov_reference.json"
out.write_text(json.dumps({"torch": torch.__version__, "momentum": 0.9, "weight_decay": 0.1, "initial": initial, "steps": steps}, indent=1))
print(out)
