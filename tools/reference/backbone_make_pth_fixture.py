"""Tiny .pth / .safetensors fixtures for the TypeScript checkpoint readers (a few KB, committed).

Covers what a state_dict can hold: every common dtype, 0-dim and empty tensors, non-contiguous strides,
storage offsets, several tensors sharing one storage, an OrderedDict with `_metadata`, a nested checkpoint
({'model': state_dict, ...}), the legacy (pre-1.6, non-zip) serialization, and a deflated zip.
Writes tools/reference/fixtures/backbones/pth/{tiny.pth, tiny-legacy.pth, tiny-nested.pth,
tiny-deflated.pth, tiny.safetensors, expected.json}.

Run: V=$(bash ../shared/tools/python-reference-env.sh); $V/bin/python tools/reference/backbone_make_pth_fixture.py
"""
import collections
import json
import os
import zipfile

import torch

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "backbones", "pth")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
sd = module.state_dict()  # an OrderedDict carrying _metadata, with an int64 0-dim num_batches_tracked
sd["f32"] = torch.randn(2, 3)
sd["f32_transposed"] = base.t()  # strides (1, 6)
sd["f32_offset_slice"] = base[1:3, 2:5]  # storage offset 8, strides (6, 1)
sd["f32_shared_row"] = base[3]  # same storage as the two above, offset 18
sd["f32_every_other"] = base[:, ::2]  # strides (6, 2)
sd["f32_scalar"] = torch.tensor(3.25)
sd["f32_empty"] = torch.zeros(0, 4)
sd["f64"] = torch.tensor([1.5, -2.25, 1e-3], dtype=torch.float64)
sd["f16"] = torch.tensor([0.1, -65504.0, 6e-8, 1.0], dtype=torch.float16)
sd["bf16"] = torch.tensor([0.1, -3.5, 1e20], dtype=torch.bfloat16)
sd["i64"] = torch.tensor([[1, -2], [2**40, -(2**33)]], dtype=torch.int64)
sd["i32"] = torch.tensor([7, -8, 2**31 - 1], dtype=torch.int32)
sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
sd["bool"] = torch.tensor([True, False, True])
sd["f32_channels_last"] = torch.randn(1, 2, 2, 3).contiguous(memory_format=torch.channels_last)

torch.save(sd, os.path.join(OUT, "tiny.pth"))
torch.save(sd, os.path.join(OUT, "tiny-legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"model": sd, "epoch": 3, "args": {"lr": 0.01}}, os.path.join(OUT, "tiny-nested.pth"))

# Same archive with every entry deflated (some tools re-zip checkpoints).
with zipfile.ZipFile(os.path.join(OUT, "tiny.pth")) as src, zipfile.ZipFile(
    os.path.join(OUT, "tiny-deflated.pth"), "w", compression=zipfile.ZIP_DEFLATED
) as dst:
    for info in src.infolist():
        dst.writestr(info.filename, src.read(info.filename))


def expected(t):
    flat = t.contiguous().reshape(-1)
    if t.dtype in (torch.float16, torch.bfloat16, torch.float64):
        values = flat.float().tolist()
    elif t.dtype == torch.bool:
        values = [int(v) for v in flat.tolist()]
    else:
        values = flat.tolist()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": values}


with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump({k: expected(v) for k, v in sd.items()}, f, indent=1)

try:
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in sd.items() if not k.startswith("f32_shared") and k != "f32_offset_slice" and k != "f32_transposed" and k != "f32_every_other"},
        os.path.join(OUT, "tiny.safetensors"),
        metadata={"format": "pt", "source": "backbone_make_pth_fixture.py"},
    )
except ImportError:
    print("safetensors not installed: tiny.safetensors not regenerated")

for name in sorted(os.listdir(OUT)):
    print(name, os.path.getsize(os.path.join(OUT, name)))
