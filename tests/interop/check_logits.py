"""transformers' logits on an HF checkpoint equal a stored reference (torchtitan's model).

Usage: check_logits.py HF_DIR ARCH_CLASS LOGITS.safetensors [--bf16] [--mtp-layer N]
                       [--norm-eps-gap]
       check_logits.py --list FILE

--list FILE: one check per line of FILE (its arguments separated by tabs), all in this one
process, so that transformers and each model class are imported once; fails if any fails.

LOGITS.safetensors holds `input_ids` [1, T] (int64) and `logits` [1, T, V] (float32), written
by tests/generations/torchtitan_fixtures.py from torchtitan's own forward pass on the native
weights. The checkpoint is loaded strictly (no missing, unexpected or mismatched keys) in
float32 (bf16 files are widened exactly) with eager attention, and run on the same ids.
--mtp-layer N: the keys of HF layer N (DeepSeek-V3's multi-token-prediction block) may be
reported unexpected: DeepseekV3ForCausalLM has no MTP module and ignores only the released
model's layer 61 by name.

Tolerance, relative to the largest reference logit |ref|max:
- float32 files: max |diff| <= 1e-4 * |ref|max. Both sides compute the same float32 model;
  only the order of operations differs (fused vs split projections, SDPA/flex vs eager
  softmax), which moves the last few bits, orders of magnitude below any mapping error
  (a swapped head, expert or permutation changes logits by about |ref|max itself).
- --bf16 (ckconv to-hf --dtype bf16): max |diff| <= 3e-2 * |ref|max. Every weight is rounded
  to 8 significant bits (relative error <= 2^-9 each); over two layers these add up to about
  1% of the logit scale on these fixtures, while mapping errors stay near 100%.
- --norm-eps-gap: max |diff| <= 3e-3 * |ref|max, for torchtitan v0.2's DeepSeek-V3, whose final
  norm is nn.RMSNorm(dim) with torch's default eps (float32 machine epsilon) where HF applies
  config.json's rms_norm_eps (1e-5) to every norm; on these fixtures it moves logits by about
  5e-4 of |ref|max (2026's models give the final norm the same eps, and match to 1e-5).
"""
import sys
import traceback

import torch
import transformers
from safetensors.torch import load_file

from interop_common import CheckFailures, quiet_libraries

F32_BOUND, BF16_BOUND, NORM_EPS_GAP_BOUND = 1e-4, 3e-2, 3e-3


def check(argv):
    bf16, eps_gap = "--bf16" in argv, "--norm-eps-gap" in argv
    argv = [a for a in argv if a not in ("--bf16", "--norm-eps-gap")]
    mtp_prefix = None
    if "--mtp-layer" in argv:
        at = argv.index("--mtp-layer")
        mtp_prefix = f"model.layers.{argv[at + 1]}."
        del argv[at:at + 2]
    if len(argv) != 3:
        print("usage error: check_logits.py HF_DIR ARCH_CLASS LOGITS.safetensors [--bf16] "
              "[--mtp-layer N] [--norm-eps-gap]", file=sys.stderr)
        return 2
    hf_dir, class_name, logits_file = argv
    quiet_libraries()
    failures = CheckFailures(f"check_logits {class_name} {hf_dir}")
    reference = load_file(logits_file)
    model_class = getattr(transformers, class_name)
    try:
        model, info = model_class.from_pretrained(
            hf_dir, output_loading_info=True, dtype=torch.float32, local_files_only=True,
            attn_implementation="eager")
    except Exception as error:  # transformers' own refusal is the verdict
        failures.fail(f"from_pretrained raised {type(error).__name__}: {error}")
        return failures.exit_code()
    for kind, entries in info.items():
        if kind == "unexpected_keys" and mtp_prefix:
            entries = [k for k in entries if not str(k).startswith(mtp_prefix)]
        if entries:
            failures.fail(f"from_pretrained reports {len(entries)} {kind}: {sorted(map(str, entries))[:8]}")
    with torch.no_grad():
        logits = model.eval()(reference["input_ids"]).logits.float()
    expected = reference["logits"]
    if logits.shape != expected.shape:
        failures.fail(f"logits shape {list(logits.shape)}, torchtitan's {list(expected.shape)}")
        return failures.exit_code()
    scale = expected.abs().max().item()
    difference = (logits - expected).abs().max().item()
    bound = (BF16_BOUND if bf16 else NORM_EPS_GAP_BOUND if eps_gap else F32_BOUND) * scale
    if not difference <= bound:
        failures.fail(f"max |logits - torchtitan's| = {difference:.3g} > {bound:.3g} "
                      f"(|ref|max {scale:.3g})")
    if not failures.count:
        print(f"OK check_logits {class_name} {hf_dir}: max |diff| {difference / scale:.2g} "
              f"of |ref|max {scale:.3g}")
    return failures.exit_code()


def main(argv):
    torch.set_num_threads(1)  # tiny models: more threads only add spinning CPU time
    if argv[:1] != ["--list"]:
        return check(argv)
    if len(argv) != 2:
        print("usage error: check_logits.py --list FILE", file=sys.stderr)
        return 2
    with open(argv[1]) as lines:
        jobs = [line.rstrip("\n").split("\t") for line in lines if line.strip()]
    codes = []
    for job in jobs:
        try:
            codes.append(check(job))
        except Exception:  # one crashing check fails, the others still run
            traceback.print_exc()
            codes.append(1)
    failed = sum(code != 0 for code in codes)
    print(f"check_logits: {len(jobs) - failed} of {len(jobs)} checks passed")
    return 1 if failed or not jobs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
