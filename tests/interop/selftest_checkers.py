"""Self-test of the interop checkers against the adapter fixtures (tests/fixtures/adapters): each checker must pass on
the good fixtures and FAIL on deliberately broken copies, so a checker that passes silently is
caught. Runs inside the reference chroot; the fixtures must be copied into the chroot tree first:

  scripts/refenv.sh run tests/interop/selftest_checkers.py /tmp/ckconv-test-XXXX/adapters

Ends with the line "N passed, N failed"; exit 0 iff nothing failed.
"""

import concurrent.futures
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
HF_FORMAT = {"format": "pt"}

# (fixture HF directory, transformers class) that must load strictly.
LOADABLE = [
    ("llama3_tiny_gqa/hf", "LlamaForCausalLM"),
    ("llama3_tiny_tied/hf", "LlamaForCausalLM"),
    ("llama3_tiny_fused/hf", "LlamaForCausalLM"),
    ("llama3_tiny_bf16/hf", "LlamaForCausalLM"),
    ("qwen3_tiny/hf", "Qwen3ForCausalLM"),
    ("qwen3_tiny_fused/hf", "Qwen3ForCausalLM"),
    ("qwen3_tiny_moe/hf", "Qwen3MoeForCausalLM"),
    ("qwen3_tiny_moe_nolb/hf", "Qwen3MoeForCausalLM"),
    ("deepseek_v3_tiny/hf", "DeepseekV3ForCausalLM"),
    ("deepseek_v3_tiny_qlora/hf", "DeepseekV3ForCausalLM"),
    ("gpt_oss_tiny/hf_transformers", "GptOssForCausalLM"),
    ("llama4_tiny/hf", "Llama4ForCausalLM"),
]


class SelfTest:
    """Builds the broken inputs up front, then runs every checker as a subprocess (two at a time:
    each one spends most of its time importing torch) and reports in declaration order."""

    def __init__(self, fixtures, scratch):
        self.fixtures = fixtures
        self.scratch = scratch
        # (name, callable returning (ok, detail lines), whether it must wait for earlier jobs)
        self.jobs = []

    def expect(self, expected_exit, name, *command):
        def job():
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, os.path.join(HERE, command[0]), *command[1:]],
                capture_output=True, text=True)
            failure_lines = [l for l in result.stdout.splitlines() if l.startswith("FAIL")]
            # A failing check must say why; a passing one must not print a FAIL line.
            ok = result.returncode == expected_exit and bool(failure_lines) == (expected_exit == 1)
            timing = f"({time.monotonic() - started:.1f} s)"
            if ok:
                return True, [f"{timing}  [{failure_lines[0][:150]}]" if failure_lines else timing]
            output = (result.stdout + result.stderr).strip().splitlines()[-8:]
            return False, [f"exit {result.returncode}, expected {expected_exit} {timing}"] + \
                [f"     | {line}" for line in output]
        self.jobs.append((name, job, False))

    def expect_true(self, name, predicate):
        """A check done in this process once every job declared before it has finished."""
        self.jobs.append((name, lambda: (bool(predicate()), [""]), True))

    def run(self, parallel_jobs):
        failed = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel_jobs) as pool:
            # Results are collected in declaration order, so when a waiting job is reached every
            # earlier job has finished.
            pending = [(name, job if waits else pool.submit(job)) for name, job, waits in self.jobs]
            for name, job_or_future in pending:
                if callable(job_or_future):
                    ok, lines = job_or_future()
                else:
                    ok, lines = job_or_future.result()
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name} {lines[0]}".rstrip())
                for line in lines[1:]:
                    print(line)
        print(f"{len(self.jobs) - failed} passed, {failed} failed")
        return failed

    def fixture(self, *parts):
        return os.path.join(self.fixtures, *parts)

    def edited_file(self, name, source_file, edit, metadata):
        """Copy of a safetensors file whose tensor dict went through edit(dict); returns its path."""
        tensors = load_file(source_file)
        edit(tensors)
        target = os.path.join(self.scratch, name)
        save_file(tensors, target, metadata=metadata)
        return target

    def variant(self, name, source_dir, edit):
        """Copy of an HF fixture directory whose tensors went through edit(dict)."""
        target = os.path.join(self.scratch, name)
        os.makedirs(target)
        tensors = load_file(os.path.join(source_dir, "model.safetensors"))
        edit(tensors)
        save_file(tensors, os.path.join(target, "model.safetensors"), metadata=HF_FORMAT)
        shutil.copy(os.path.join(source_dir, "config.json"), target)
        return target

    def sharded_copy(self, name, source_dir, shard_count, corrupt_index=False):
        """source_dir re-written as shard_count shards plus model.safetensors.index.json."""
        target = os.path.join(self.scratch, name)
        os.makedirs(target)
        tensors = load_file(os.path.join(source_dir, "model.safetensors"))
        keys = sorted(tensors)
        weight_map = {}
        for shard in range(shard_count):
            shard_name = f"model-{shard + 1:05d}-of-{shard_count:05d}.safetensors"
            shard_keys = keys[shard::shard_count]
            save_file({k: tensors[k] for k in shard_keys}, os.path.join(target, shard_name),
                      metadata=HF_FORMAT)
            weight_map.update({k: shard_name for k in shard_keys})
        if corrupt_index:
            weight_map[keys[0]], weight_map[keys[1]] = weight_map[keys[1]], weight_map[keys[0]]
        total_size = sum(t.numel() * t.element_size() for t in tensors.values())
        with open(os.path.join(target, "model.safetensors.index.json"), "w") as index_file:
            json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map},
                      index_file, indent=2)
        shutil.copy(os.path.join(source_dir, "config.json"), target)
        return target

    def write_raw(self, name, source_file, rewrite_header):
        """Copy of a safetensors file with the same data but a re-serialised JSON header."""
        with open(source_file, "rb") as source:
            data = source.read()
        header_size = int.from_bytes(data[:8], "little")
        header = rewrite_header(json.loads(data[8:8 + header_size])).encode()
        header += b" " * (-len(header) % 8)
        target = os.path.join(self.scratch, name)
        with open(target, "wb") as out:
            out.write(len(header).to_bytes(8, "little") + header + data[8 + header_size:])
        return target


def run_savefile_identity_tests(test):
    good = sorted(glob.glob(test.fixture("*", "hf", "model.safetensors")) +
                  glob.glob(test.fixture("*", "*native.safetensors")) +
                  glob.glob(test.fixture("*", "hf_transformers", "model.safetensors")))
    test.expect(0, f"savefile identity: {len(good)} fixture files", "check_savefile_identity.py",
                *good)
    test.expect(0, "savefile identity: hf files carry {format: pt}", "check_savefile_identity.py",
                "--expect-metadata", '{"format":"pt"}', *glob.glob(test.fixture("*", "hf", "*.safetensors")))
    hf_file = test.fixture("llama3_tiny_gqa", "hf", "model.safetensors")
    spaced = test.write_raw("spaced.safetensors", hf_file, lambda h: json.dumps(h, indent=1))
    test.expect(1, "savefile identity: indented header", "check_savefile_identity.py", spaced)
    unsorted = test.write_raw("unsorted.safetensors", hf_file, lambda h: json.dumps(
        dict(reversed(list(h.items()))), separators=(",", ":")))
    test.expect(1, "savefile identity: unsorted header keys", "check_savefile_identity.py", unsorted)
    test.expect(1, "savefile identity: metadata expected but absent", "check_savefile_identity.py",
                "--expect-metadata", '{"format":"pt"}', test.fixture("qwen3_tiny", "native.safetensors"))


def run_transformers_load_tests(test):
    for directory, class_name in LOADABLE:
        test.expect(0, f"transformers load: {directory} {class_name}", "check_transformers_load.py",
                    test.fixture(directory), class_name)

    llama = test.fixture("llama3_tiny_gqa", "hf")
    moe = test.fixture("qwen3_tiny_moe", "hf")
    tied = test.fixture("llama3_tiny_tied", "hf")
    llama4 = test.fixture("llama4_tiny", "hf")
    test.expect(0, "transformers load: qwen3 MoE as 3 shards + index", "check_transformers_load.py",
                test.sharded_copy("moe_sharded", moe, 3), "Qwen3MoeForCausalLM")

    def rename(old, new):
        return lambda t: t.__setitem__(new, t.pop(old))

    broken = [
        ("renamed tensor", llama, "LlamaForCausalLM",
         rename("model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.upper_proj.weight")),
        ("missing tensor", llama, "LlamaForCausalLM",
         lambda t: t.pop("model.layers.0.self_attn.o_proj.weight")),
        ("extra tensor", llama, "LlamaForCausalLM",
         lambda t: t.__setitem__("model.layers.0.self_attn.extra.weight", torch.zeros(4))),
        ("transposed tensor", llama, "LlamaForCausalLM",
         lambda t: t.__setitem__("model.layers.0.mlp.gate_proj.weight",
                                 t["model.layers.0.mlp.gate_proj.weight"].t().contiguous())),
        ("bf16 data, float32 config", llama, "LlamaForCausalLM",
         lambda t: t.update({k: v.to(torch.bfloat16) for k, v in t.items()})),
        ("untied model without lm_head", llama, "LlamaForCausalLM",
         lambda t: t.pop("lm_head.weight")),
        ("tied model with lm_head", tied, "LlamaForCausalLM",
         lambda t: t.__setitem__("lm_head.weight", t["model.embed_tokens.weight"].clone())),
        ("MoE expert missing", moe, "Qwen3MoeForCausalLM",
         lambda t: t.pop("model.layers.1.mlp.experts.11.down_proj.weight")),
        ("MoE expert renamed out of range", moe, "Qwen3MoeForCausalLM",
         rename("model.layers.1.mlp.experts.11.up_proj.weight",
                "model.layers.1.mlp.experts.12.up_proj.weight")),
        ("llama4 key without language_model. prefix among prefixed", llama4, "Llama4ForCausalLM",
         rename("language_model.model.norm.weight", "model.norm.weight")),
    ]
    for index, (what, source, class_name, edit) in enumerate(broken):
        test.expect(1, f"transformers load must fail: {what}", "check_transformers_load.py",
                    test.variant(f"broken_{index}", source, edit), class_name)
    test.expect(1, "transformers load must fail: wrong class", "check_transformers_load.py",
                llama, "Qwen3ForCausalLM")
    test.expect(1, "transformers load must fail: gpt_oss torchtitan '*_blocks' layout",
                "check_transformers_load.py", test.fixture("gpt_oss_tiny", "hf"), "GptOssForCausalLM")
    test.expect(1, "transformers load must fail: index names the wrong shard",
                "check_transformers_load.py",
                test.sharded_copy("moe_bad_index", moe, 3, corrupt_index=True), "Qwen3MoeForCausalLM")


def run_compare_tensors_tests(test):
    moe_dir = test.fixture("qwen3_tiny_moe")
    native = os.path.join(moe_dir, "native.safetensors")
    roundtrip = os.path.join(moe_dir, "roundtrip_native.safetensors")
    bias = r".*\.moe\.expert_bias_E$"
    test.expect(0, "compare: qwen3 MoE native vs round trip, bias excluded", "compare_tensors.py",
                native, roundtrip, "--exclude", bias)
    # The fixture's expert_bias_E is zero at init, so the round trip's zeros are bit-equal.
    test.expect(0, "compare: qwen3 MoE native vs round trip (bias is zero at init)",
                "compare_tensors.py", native, roundtrip)
    trained_file = test.edited_file(
        "moe_trained_bias.safetensors", native,
        lambda t: t.update({k: torch.full_like(v, 0.25) for k, v in t.items()
                            if k.endswith("expert_bias_E")}), metadata=None)
    test.expect(1, "compare must fail: non-zero expert_bias_E vs round trip", "compare_tensors.py",
                trained_file, roundtrip)
    test.expect(0, "compare: non-zero expert_bias_E vs round trip, bias excluded",
                "compare_tensors.py", trained_file, roundtrip, "--exclude", bias)
    test.expect(1, "compare must fail: --exclude matching nothing", "compare_tensors.py",
                native, roundtrip, "--exclude", "no_such_key")
    hf = test.fixture("qwen3_tiny_moe", "hf")
    test.expect(0, "compare: single file vs 3 shards", "compare_tensors.py",
                hf, test.sharded_copy("moe_sharded_compare", hf, 3))

    def one_ulp(t):
        key = "model.layers.0.self_attn.q_proj.weight"
        bits = t[key].clone().view(torch.int32)
        bits.view(-1)[7] += 1
        t[key] = bits.view(torch.float32)

    for name, edit in [("one element off by one ulp", one_ulp),
                       ("missing key", lambda t: t.pop("model.norm.weight")),
                       ("dtype changed", lambda t: t.__setitem__(
                           "model.norm.weight", t["model.norm.weight"].to(torch.bfloat16)))]:
        changed = test.variant("compare_" + name.replace(" ", "_"), hf, edit)
        test.expect(1, f"compare must fail: {name}", "compare_tensors.py", hf, changed)


def files_identical(first_path, second_path):
    with open(first_path, "rb") as first, open(second_path, "rb") as second:
        return first.read() == second.read()


def run_reference_converter_tests(test):
    for fixture, extra in [("llama3_tiny_gqa", []), ("llama3_tiny_tied", ["--tied"]),
                           ("llama3_tiny_bf16", [])]:
        out_dir = os.path.join(test.scratch, "reference_" + fixture)
        test.expect(0, f"torch reference to-hf: {fixture}", "torch_convert_reference.py", "to-hf",
                    "llama3", test.fixture(fixture, "native.safetensors"), out_dir,
                    "--n-heads", "4", "--n-kv-heads", "2", *extra)
        test.expect_true(f"torch reference output byte-identical: {fixture}",
                         lambda out_dir=out_dir, fixture=fixture: files_identical(
                             os.path.join(out_dir, "model.safetensors"),
                             test.fixture(fixture, "hf", "model.safetensors")))
    test.expect(1, "torch reference must fail: wrong --n-kv-heads", "torch_convert_reference.py",
                "to-hf", "llama3", test.fixture("llama3_tiny_gqa", "native.safetensors"),
                os.path.join(test.scratch, "reference_bad"), "--n-heads", "4", "--n-kv-heads", "4")


def main(argv):
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage error: selftest_checkers.py FIXTURES_ADAPTERS_DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ckconv-selftest-") as scratch:
        test = SelfTest(os.path.abspath(argv[0]), scratch)
        run_savefile_identity_tests(test)
        run_compare_tensors_tests(test)
        run_reference_converter_tests(test)
        run_transformers_load_tests(test)
        failed = test.run(int(os.environ.get("CKCONV_SELFTEST_JOBS", "2")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
