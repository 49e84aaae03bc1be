"""Checks ckconv's HF output for an HF input bit for bit against PyTorch's own arithmetic: FP8
block-scaled weights against `(w.float() * s_expanded).to(dtype)`, MXFP4 experts against
transformers' `convert_moe_packed_tensors` (transposed back to [E, out, in]), every other
floating tensor against `tensor.to(dtype)` (the tensors torchtitan keeps in f32 stay f32).

Usage: check_dequant.py HF_IN HF_OUT DTYPE [--keep-f32 REGEX]... [--dequantized-via bfloat16]
  HF_IN    the release folder (F8_E4M3 + _scale_inv, U8 _blocks + _scales, floats)
  HF_OUT   ckconv's from-hf then to-hf output of it
  DTYPE    bfloat16, float16 or float32: the dtype of the cast/dequantized tensors
  --keep-f32  keys that must stay float32 (re.search)
Exit 0 iff every output tensor equals its reference bit for bit and the key sets agree.
"""

import argparse
import re
import sys

import torch
from interop_common import CheckFailures, Checkpoint, quiet_libraries, tensor_difference


def fp8_reference(weight, scale, block, dtype):
    rows, cols = weight.shape
    expanded = scale.repeat_interleave(block[0], 0)[:rows].repeat_interleave(block[1], 1)[:, :cols]
    return (weight.float() * expanded).to(dtype)


def mxfp4_reference(blocks, scales, dtype):
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    out = convert_moe_packed_tensors(blocks, scales, dtype=torch.bfloat16)
    # transformers returns [E, in, out] in bf16 (exact for scales below 255): back to [E, out, in].
    return out.transpose(1, 2).contiguous().to(dtype)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("hf_in")
    parser.add_argument("hf_out")
    parser.add_argument("dtype", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--keep-f32", action="append", default=[])
    parser.add_argument("--dequantized-via", choices=["bfloat16"],
                        help="dequantized tensors were written in this dtype first (from-hf's "
                             "default), then cast to DTYPE")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    via = getattr(torch, args.dequantized_via) if args.dequantized_via else dtype
    quiet_libraries()
    failures = CheckFailures("check_dequant")
    source, output = Checkpoint(args.hf_in), Checkpoint(args.hf_out)
    in_keys = set(source.keys())
    expected = {k for k in in_keys if not k.endswith("_scale_inv") and not k.endswith("_scales")}
    # A release's stored copies of the embeddings and head in its MTP layer are dropped (after
    # ckconv checked them equal to the main tensors): they are compared with those instead.
    copies = {k: ("model.embed_tokens.weight" if k.endswith(".embed_tokens.weight") else "lm_head.weight")
              for k in expected if re.fullmatch(r"model\.layers\.\d+\.(embed_tokens|shared_head\.head)\.weight", k)}
    for key, main in sorted(copies.items()):
        if not torch.equal(source.tensor(key).contiguous().view(torch.uint8),
                           source.tensor(main).contiguous().view(torch.uint8)):  # bits: NaN too
            failures.fail(f"{key}: the release's copy differs from {main}")
    expected -= set(copies)
    out_keys = set(output.keys())
    for key in sorted(expected ^ out_keys):
        failures.fail(f"{key}: in {'the input' if key in expected else 'the output'} only")
    checked = {"fp8": 0, "mxfp4": 0, "cast": 0}
    for key in sorted(expected & out_keys):
        original = source.tensor(key)
        if original.dtype == torch.float8_e4m3fn:
            reference = fp8_reference(original, source.tensor(key + "_scale_inv"), (128, 128), via).to(dtype)
            checked["fp8"] += 1
        elif original.dtype == torch.uint8 and key.endswith("_blocks"):
            scales = source.tensor(key[: -len("_blocks")] + "_scales")
            reference = mxfp4_reference(original, scales, via).to(dtype)
            checked["mxfp4"] += 1
        elif any(re.search(pattern, key) for pattern in args.keep_f32):
            reference = original.to(torch.float32)
            checked["cast"] += 1
        else:
            reference = original.to(dtype)
            checked["cast"] += 1
        difference = tensor_difference(output.tensor(key), reference.contiguous())
        if difference:
            failures.fail(f"{key}: {difference} (against PyTorch)")
    print(f"check_dequant: {checked} tensors compared ({args.dtype})")
    if sum(checked.values()) == 0:
        failures.fail("nothing compared")
    return failures.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
