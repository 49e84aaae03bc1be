"""PyTorch reference converter for benchmarks: converts a native torchtitan llama3 checkpoint to HF
the way the Python tools do (whole state dict in RAM, safetensors.torch.load_file / save_file).

Usage: torch_convert_reference.py to-hf llama3 NATIVE.safetensors OUT_DIR
           --n-heads N --n-kv-heads K [--tied]
Writes OUT_DIR/model.safetensors with metadata {"format": "pt"}. The mapping is
docs/mappings.md llama3 (Llama3StateDictAdapter.to_hf): q/k rows RoPE-permuted per head (q with
n_heads, k with n_kv_heads), keys renamed, lm_head.weight skipped with --tied. Unlike torchtitan,
which silently drops unknown layer keys, any unmapped key is an error (exit 1).
"""

import argparse
import os
import re
import sys
import time

from safetensors.torch import load_file, save_file

# docs/mappings.md llama3: native key (with {} for the layer number) -> HF key.
LLAMA3_LAYER_KEYS = {
    "layers.{}.attention.qkv_linear.wq.weight": "model.layers.{}.self_attn.q_proj.weight",
    "layers.{}.attention.qkv_linear.wk.weight": "model.layers.{}.self_attn.k_proj.weight",
    "layers.{}.attention.qkv_linear.wv.weight": "model.layers.{}.self_attn.v_proj.weight",
    "layers.{}.attention.wo.weight": "model.layers.{}.self_attn.o_proj.weight",
    "layers.{}.feed_forward.w1.weight": "model.layers.{}.mlp.gate_proj.weight",
    "layers.{}.feed_forward.w3.weight": "model.layers.{}.mlp.up_proj.weight",
    "layers.{}.feed_forward.w2.weight": "model.layers.{}.mlp.down_proj.weight",
    "layers.{}.attention_norm.weight": "model.layers.{}.input_layernorm.weight",
    "layers.{}.ffn_norm.weight": "model.layers.{}.post_attention_layernorm.weight",
}
LLAMA3_TOP_LEVEL_KEYS = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
LAYER_NUMBER = re.compile(r"^layers\.(\d+)\.")


def permute_for_rotate_half(weight, n_heads, rows, columns):
    """torchtitan's _permute (= HF convert_llama_weights_to_hf.permute): within each head, the
    interleaved RoPE pairs (2i, 2i+1) become the rotate_half pairs (i, i + head_dim/2)."""
    return (weight.view(n_heads, rows // n_heads // 2, 2, columns)
            .transpose(1, 2).reshape(rows, columns).clone())


def llama3_to_hf(native, n_heads, n_kv_heads, tied):
    # spec: q has n_heads*head_dim rows and k n_kv_heads*head_dim rows, head_dim = q rows/n_heads;
    # checked so that wrong head counts fail instead of producing a wrong permutation.
    first_query = native.get("layers.0.attention.qkv_linear.wq.weight")
    head_dim = first_query.shape[0] // n_heads if first_query is not None else None
    hf = {}
    for key, tensor in native.items():
        match = LAYER_NUMBER.match(key)
        if match:
            layer = match.group(1)
            abstract_key = LAYER_NUMBER.sub("layers.{}.", key, count=1)
            if abstract_key not in LLAMA3_LAYER_KEYS:
                raise KeyError(f"no llama3 HF mapping for native key {key!r}")
            if abstract_key.endswith((".wq.weight", ".wk.weight")):
                if head_dim is None:
                    raise KeyError("layers.0.attention.qkv_linear.wq.weight is missing")
                heads = n_heads if abstract_key.endswith(".wq.weight") else n_kv_heads
                if tensor.shape[0] != heads * head_dim:
                    raise ValueError(f"{key} has {tensor.shape[0]} rows, expected {heads} heads "
                                     f"x head_dim {head_dim} (= q rows / --n-heads)")
            if abstract_key.endswith(".wq.weight"):
                tensor = permute_for_rotate_half(tensor, n_heads, *tensor.shape)
            elif abstract_key.endswith(".wk.weight"):
                tensor = permute_for_rotate_half(tensor, n_kv_heads, *tensor.shape)
            hf[LLAMA3_LAYER_KEYS[abstract_key].format(layer)] = tensor
        elif tied and key == "lm_head.weight":
            continue
        elif key in LLAMA3_TOP_LEVEL_KEYS:
            hf[LLAMA3_TOP_LEVEL_KEYS[key]] = tensor
        else:
            raise KeyError(f"no llama3 HF mapping for native key {key!r}")
    return hf


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("direction", choices=["to-hf"])
    parser.add_argument("family", choices=["llama3"])
    parser.add_argument("native_path")
    parser.add_argument("out_dir")
    parser.add_argument("--n-heads", type=int, required=True)
    parser.add_argument("--n-kv-heads", type=int, required=True)
    parser.add_argument("--tied", action="store_true", help="skip lm_head.weight (weight tying)")
    return parser.parse_args(argv)


def main(argv):
    arguments = parse_arguments(argv)
    start = time.perf_counter()
    native = load_file(arguments.native_path)
    loaded = time.perf_counter()
    try:
        hf = llama3_to_hf(native, arguments.n_heads, arguments.n_kv_heads, arguments.tied)
    except (KeyError, ValueError, RuntimeError) as error:
        print(f"FAIL torch_convert_reference: {arguments.native_path}: {error.args[0]}")
        return 1
    converted = time.perf_counter()
    os.makedirs(arguments.out_dir, exist_ok=True)
    save_file(hf, os.path.join(arguments.out_dir, "model.safetensors"), metadata={"format": "pt"})
    saved = time.perf_counter()
    print(f"torch_convert_reference: {len(native)} -> {len(hf)} tensors; seconds: load "
          f"{loaded - start:.3f}, convert {converted - loaded:.3f}, save {saved - converted:.3f}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
