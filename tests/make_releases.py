#!/usr/bin/env python3
"""Writes few-layer random-data HF folders shaped like published releases.

    make_releases.py OUT_DIR [--full-range] [--f32-specials] [--real-dims] [--experts=N]
                     [--layers=N] [--fast-data] [NAME...]

Each folder OUT_DIR/NAME holds config.json (the release's fields, small dimensions),
model.safetensors.index.json and shards named as the release names them, with the release's
key names, dtypes (F8_E4M3 weights with F32 `_scale_inv` block scales, U8 MXFP4 blocks and
scales, F32 router biases) and tensor ranks; only the sizes are small (a few layers, dims of
64..320) so that conversions run in seconds. Facts: docs/research/hf_releases.md.
Plain Python 3 (no torch, no numpy); the data is random but reproducible (seeded per key).

For benchmarks (scripts/bench.sh): --real-dims gives deepseek-v3 and gpt-oss-20b the real
per-layer dimensions of DeepSeek-V3 and gpt-oss-120b (vocabulary 1024, --experts=N routed
experts, --layers=N layers); --fast-data repeats each tensor's first 64 Ki elements so that
gigabytes are written in seconds (the default data is unchanged by these options).

Releases: deepseek-v3 (with its multi-token-prediction layer model.layers.{N}.*), gpt-oss-20b, llama-3.1-8b, llama-3.2-1b, qwen3-0.6b, qwen3-30b-a3b, llama-4-scout
(the multimodal repo: language_model.* text keys plus vision_model.* and
multi_modal_projector.* tensors).
"""
import json
import os
import random
import struct
import sys

SIZES = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "U8": 1}


def ceil_div(a, b):
    return (a + b - 1) // b


# --full-range: quantized data covering every code: fp8 bytes 0..255 (NaN codes too), block
# scales over 2^-40..2^40, MXFP4 scale bytes 0..254 (255, NaN in E8M0, is refused).
# --f32-specials: float tensors are F32 holding RNE ties, overflows, subnormals, infinities
# and NaNs with payloads (for --dtype casts).
MODES = set()
OPTIONS = {}  # --experts=N, --layers=N
FAST_PERIOD = 65536  # elements generated per tensor with --fast-data, then repeated


def option(name, default):
    return int(OPTIONS.get(name, default))

F32_SPECIALS = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF, 0x477FF000, 0x477FE000,
                0x33800000, 0x33000000, 0x33C00000, 0x00000001, 0x00018000, 0x80000000, 0x7F800000,
                0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA12345, 0xFFBFFFFF, 0x387FC000,
                0x38800000, 0x3E2AAAAB]


# Tensors a release stores twice (DeepSeek's MTP layer's copies of the embeddings and the
# output head): the copy gets the bytes of the tensor it copies.
COPY_OF = {}


def tensor_bytes(name, dtype, shape):
    """Random finite values: floats of magnitude about 2^-8..2^2, fp8 without NaN codes,
    MXFP4 scale bytes around 127 (the 2^0 exponent)."""
    rng = random.Random(COPY_OF.get(name, name))
    count = 1
    for d in shape:
        count *= d
    if "--fast-data" in MODES and count > FAST_PERIOD:
        period = tensor_bytes(name, dtype, [FAST_PERIOD])
        return (period * (count // FAST_PERIOD + 1))[:count * SIZES[dtype]]
    full = "--full-range" in MODES
    if "--nan-scales" in MODES and name.endswith(("_scales", "_scale_inv")):  # bad-input corpus
        if dtype == "U8":
            return bytes([255] * count)
        return struct.pack("<%df" % count, *([float("inf")] * count))
    if dtype == "U8" and name.endswith("_scales"):
        if full:
            return bytes(rng.randrange(0, 255) for _ in range(count))
        return bytes(rng.randrange(118, 131) for _ in range(count))
    if dtype == "U8":
        return rng.randbytes(count)
    if dtype == "F8_E4M3":
        if full:
            return rng.randbytes(count)
        return bytes(b if (b & 0x7F) != 0x7F else 0 for b in rng.randbytes(count))
    if dtype == "F32" and name.endswith("_scale_inv"):
        if full:
            return struct.pack("<%df" % count, *(rng.choice((-1, 1)) * 2.0 ** rng.uniform(-40, 40)
                                                 for _ in range(count)))
        return struct.pack("<%df" % count, *(rng.uniform(1e-4, 1e-2) for _ in range(count)))
    if "--f32-specials" in MODES and dtype in ("F32", "BF16"):
        words = [F32_SPECIALS[i % len(F32_SPECIALS)] if i % 3 else rng.getrandbits(32)
                 for i in range(count)]
        return struct.pack("<%dI" % count, *words)
    if dtype == "F32":
        return struct.pack("<%df" % count, *(rng.uniform(-2.0, 2.0) for _ in range(count)))
    # BF16: the top half of a random f32 in [-2, 2]
    words = struct.unpack("<%dI" % count, struct.pack("<%df" % count,
                                                      *(rng.uniform(-2.0, 2.0) for _ in range(count))))
    return struct.pack("<%dH" % count, *(w >> 16 for w in words))


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dtype, shape in tensors:
        if "--f32-specials" in MODES and dtype == "BF16":
            dtype = "F32"
        data = tensor_bytes(name, dtype, shape)
        assert len(data) == SIZES[dtype] * max(1, eval("*".join(map(str, shape)) or "1"))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)
    return offset


def write_release(folder, config, tensors, shard_names):
    """Splits `tensors` (in order) evenly over `shard_names`; one name writes no index."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as out:
        json.dump(config, out, indent=2, sort_keys=True)
    if len(shard_names) == 1:
        write_safetensors(os.path.join(folder, shard_names[0]), tensors)
        return
    per = ceil_div(len(tensors), len(shard_names))
    weight_map, total = {}, 0
    for i, shard in enumerate(shard_names):
        part = tensors[i * per:(i + 1) * per]
        total += write_safetensors(os.path.join(folder, shard), part)
        weight_map.update({name: shard for name, _, _ in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as out:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, out, indent=2)


def fp8(name, out_features, in_features):
    """A DeepSeek FP8 linear: the weight and its per-128x128-block inverse scale."""
    return [(name, "F8_E4M3", [out_features, in_features]),
            (name + "_scale_inv", "F32", [ceil_div(out_features, 128), ceil_div(in_features, 128)])]


def deepseek_v3():
    d, vocab, heads, q_lora, kv_lora, nope, rope, v = 256, 512, 2, 192, 128, 32, 16, 32
    dense_f, moe_f, experts, layers, dense_layers = 320, 64, 4, 2, 1
    if "--real-dims" in MODES:  # DeepSeek-V3's layer, a small vocabulary, fewer experts
        d, vocab, heads, q_lora, kv_lora, nope, rope, v = 7168, 1024, 128, 1536, 512, 128, 64, 128
        dense_f, moe_f, experts, layers = 18432, 2048, option("experts", 256), option("layers", 2)
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config",
                     "AutoModel": "modeling_deepseek.DeepseekV3Model",
                     "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"},
        "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": dense_layers,
        "hidden_act": "silu", "hidden_size": d, "initializer_range": 0.02, "intermediate_size": dense_f,
        "kv_lora_rank": kv_lora, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
        "moe_intermediate_size": moe_f, "moe_layer_freq": 1, "n_group": 2, "n_routed_experts": experts,
        "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": heads,
        "num_experts_per_tok": 2, "num_hidden_layers": layers, "num_key_value_heads": heads,
        "num_nextn_predict_layers": 1, "q_lora_rank": q_lora, "qk_nope_head_dim": nope,
        "qk_rope_head_dim": rope,
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [128, 128]},
        "rms_norm_eps": 1e-06,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                         "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                         "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
        "tie_word_embeddings": False, "topk_group": 1, "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16", "transformers_version": "4.46.3", "use_cache": True,
        "v_head_dim": v, "vocab_size": vocab}
    def block(i):
        p = "model.layers.%d." % i
        t = [(p + "input_layernorm.weight", "BF16", [d])]
        t += fp8(p + "self_attn.q_a_proj.weight", q_lora, d)
        t += [(p + "self_attn.q_a_layernorm.weight", "BF16", [q_lora])]
        t += fp8(p + "self_attn.q_b_proj.weight", heads * (nope + rope), q_lora)
        t += fp8(p + "self_attn.kv_a_proj_with_mqa.weight", kv_lora + rope, d)  # partial block
        t += [(p + "self_attn.kv_a_layernorm.weight", "BF16", [kv_lora])]
        t += fp8(p + "self_attn.kv_b_proj.weight", heads * (nope + v), kv_lora)
        t += fp8(p + "self_attn.o_proj.weight", d, heads * v)
        t += [(p + "post_attention_layernorm.weight", "BF16", [d])]
        if i < dense_layers:
            t += fp8(p + "mlp.gate_proj.weight", dense_f, d) + fp8(p + "mlp.up_proj.weight", dense_f, d)
            return t + fp8(p + "mlp.down_proj.weight", d, dense_f)
        t += [(p + "mlp.gate.weight", "BF16", [experts, d]),
              (p + "mlp.gate.e_score_correction_bias", "F32", [experts])]
        for e in range(experts):
            q = p + "mlp.experts.%d." % e
            t += fp8(q + "gate_proj.weight", moe_f, d) + fp8(q + "up_proj.weight", moe_f, d)
            t += fp8(q + "down_proj.weight", d, moe_f)
        t += fp8(p + "mlp.shared_experts.gate_proj.weight", moe_f, d)
        t += fp8(p + "mlp.shared_experts.up_proj.weight", moe_f, d)
        return t + fp8(p + "mlp.shared_experts.down_proj.weight", d, moe_f)

    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    for i in range(layers):
        t += block(i)
    t += [("model.norm.weight", "BF16", [d]), ("lm_head.weight", "BF16", [vocab, d])]
    # The multi-token-prediction layer (num_nextn_predict_layers = 1) as the release stores it:
    # a decoder block, enorm, hnorm, eh_proj, the head's norm, and copies of the embeddings
    # and the output head.
    p = "model.layers.%d." % layers
    COPY_OF.update({p + "embed_tokens.weight": "model.embed_tokens.weight",
                    p + "shared_head.head.weight": "lm_head.weight"})
    t += [(p + "embed_tokens.weight", "BF16", [vocab, d]), (p + "enorm.weight", "BF16", [d]),
          (p + "hnorm.weight", "BF16", [d])] + fp8(p + "eh_proj.weight", d, 2 * d)
    t += block(layers)
    t += [(p + "shared_head.norm.weight", "BF16", [d]), (p + "shared_head.head.weight", "BF16", [vocab, d])]
    return config, t, ["model-%05d-of-000003.safetensors" % i for i in (1, 2, 3)]


def gpt_oss_20b():
    d, vocab, heads, kv, hd, experts, f, layers = 128, 512, 4, 2, 32, 4, 64, 2
    if "--real-dims" in MODES:  # gpt-oss-120b's layer, a small vocabulary
        d, vocab, heads, kv, hd, f = 2880, 1024, 64, 8, 64, 2880
        experts, layers = option("experts", 128), option("layers", 2)
    config = {
        "architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
        "eos_token_id": 200002, "experts_per_token": 2, "head_dim": hd, "hidden_act": "silu",
        "hidden_size": d, "initial_context_length": 4096, "initializer_range": 0.02,
        "intermediate_size": f, "layer_types": [("sliding_attention", "full_attention")[i % 2] for i in range(layers)],
        "max_position_embeddings": 131072, "model_type": "gpt_oss", "num_attention_heads": heads,
        "num_experts_per_tok": 2, "num_hidden_layers": layers, "num_key_value_heads": kv,
        "num_local_experts": experts, "output_router_logits": False, "pad_token_id": 199999,
        "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn",
                                                           "model.layers.*.mlp.router",
                                                           "model.embed_tokens", "lm_head"],
                                "quant_method": "mxfp4"},
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                         "original_max_position_embeddings": 4096, "rope_type": "yarn",
                         "truncate": False},
        "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128,
        "swiglu_limit": 7.0, "tie_word_embeddings": False, "transformers_version": "4.55.0.dev0",
        "use_cache": True, "vocab_size": vocab}
    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    for i in range(layers):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", "BF16", [d])]
        for proj, rows in (("q", heads * hd), ("k", kv * hd), ("v", kv * hd)):
            t += [(p + "self_attn.%s_proj.weight" % proj, "BF16", [rows, d]),
                  (p + "self_attn.%s_proj.bias" % proj, "BF16", [rows])]
        t += [(p + "self_attn.o_proj.weight", "BF16", [d, heads * hd]),
              (p + "self_attn.o_proj.bias", "BF16", [d]), (p + "self_attn.sinks", "BF16", [heads]),
              (p + "post_attention_layernorm.weight", "BF16", [d]),
              (p + "mlp.router.weight", "BF16", [experts, d]), (p + "mlp.router.bias", "BF16", [experts]),
              (p + "mlp.experts.gate_up_proj_blocks", "U8", [experts, 2 * f, d // 32, 16]),
              (p + "mlp.experts.gate_up_proj_scales", "U8", [experts, 2 * f, d // 32]),
              (p + "mlp.experts.gate_up_proj_bias", "BF16", [experts, 2 * f]),
              (p + "mlp.experts.down_proj_blocks", "U8", [experts, d, f // 32, 16]),
              (p + "mlp.experts.down_proj_scales", "U8", [experts, d, f // 32]),
              (p + "mlp.experts.down_proj_bias", "BF16", [experts, d])]
    t += [("model.norm.weight", "BF16", [d]), ("lm_head.weight", "BF16", [vocab, d])]
    return config, t, ["model-%05d-of-00002.safetensors" % i for i in (0, 1, 2)]


def llama_layers(prefix, layers, d, heads, kv, hd, f, qk_norm=False, moe=None):
    t = []
    for i in range(layers):
        p = prefix + "layers.%d." % i
        t += [(p + "self_attn.q_proj.weight", "BF16", [heads * hd, d]),
              (p + "self_attn.k_proj.weight", "BF16", [kv * hd, d]),
              (p + "self_attn.v_proj.weight", "BF16", [kv * hd, d]),
              (p + "self_attn.o_proj.weight", "BF16", [d, heads * hd])]
        if qk_norm:
            t += [(p + "self_attn.q_norm.weight", "BF16", [hd]), (p + "self_attn.k_norm.weight", "BF16", [hd])]
        if moe:
            experts, mf = moe
            t += [(p + "mlp.gate.weight", "BF16", [experts, d])]
            for e in range(experts):
                q = p + "mlp.experts.%d." % e
                t += [(q + "gate_proj.weight", "BF16", [mf, d]), (q + "up_proj.weight", "BF16", [mf, d]),
                      (q + "down_proj.weight", "BF16", [d, mf])]
        else:
            t += [(p + "mlp.gate_proj.weight", "BF16", [f, d]), (p + "mlp.up_proj.weight", "BF16", [f, d]),
                  (p + "mlp.down_proj.weight", "BF16", [d, f])]
        t += [(p + "input_layernorm.weight", "BF16", [d]), (p + "post_attention_layernorm.weight", "BF16", [d])]
    return t


def llama_config(d, f, heads, kv, layers, vocab, tied, factor, head_dim=None):
    config = {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": d,
        "initializer_range": 0.02, "intermediate_size": f, "max_position_embeddings": 131072,
        "mlp_bias": False, "model_type": "llama", "num_attention_heads": heads,
        "num_hidden_layers": layers, "num_key_value_heads": kv, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": tied, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": vocab}
    if head_dim:
        config["head_dim"] = head_dim
    return config


def llama_3_1_8b():
    d, f, heads, kv, layers, vocab = 128, 320, 4, 2, 2, 512
    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    t += llama_layers("model.", layers, d, heads, kv, d // heads, f)
    t += [("model.norm.weight", "BF16", [d]), ("lm_head.weight", "BF16", [vocab, d])]
    return (llama_config(d, f, heads, kv, layers, vocab, False, 8.0), t,
            ["model-%05d-of-00004.safetensors" % i for i in (1, 2, 3, 4)])


def llama_3_2_1b():
    d, f, heads, kv, layers, vocab = 128, 256, 4, 2, 2, 512
    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    t += llama_layers("model.", layers, d, heads, kv, d // heads, f)
    t += [("model.norm.weight", "BF16", [d])]
    config = llama_config(d, f, heads, kv, layers, vocab, True, 32.0, head_dim=d // heads)
    config["transformers_version"] = "4.45.0.dev0"
    return config, t, ["model.safetensors"]


def qwen3_config(arch, model_type, d, f, heads, kv, hd, layers, vocab, tied):
    return {
        "architectures": [arch], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": hd, "hidden_act": "silu",
        "hidden_size": d, "initializer_range": 0.02, "intermediate_size": f,
        "max_position_embeddings": 40960, "max_window_layers": layers, "model_type": model_type,
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
        "tie_word_embeddings": tied, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
        "use_cache": True, "use_sliding_window": False, "vocab_size": vocab}


def qwen3_0_6b():
    d, f, heads, kv, hd, layers, vocab = 64, 192, 4, 2, 32, 2, 512
    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    t += llama_layers("model.", layers, d, heads, kv, hd, f, qk_norm=True)
    t += [("model.norm.weight", "BF16", [d])]
    return (qwen3_config("Qwen3ForCausalLM", "qwen3", d, f, heads, kv, hd, layers, vocab, True), t,
            ["model.safetensors"])


def qwen3_30b_a3b():
    d, f, heads, kv, hd, layers, vocab, experts, mf = 128, 384, 4, 2, 32, 2, 512, 4, 64
    t = [("model.embed_tokens.weight", "BF16", [vocab, d])]
    t += llama_layers("model.", layers, d, heads, kv, hd, f, qk_norm=True, moe=(experts, mf))
    t += [("model.norm.weight", "BF16", [d]), ("lm_head.weight", "BF16", [vocab, d])]
    config = qwen3_config("Qwen3MoeForCausalLM", "qwen3_moe", d, f, heads, kv, hd, layers, vocab, False)
    config.update({"decoder_sparse_step": 1, "mlp_only_layers": [], "moe_intermediate_size": mf,
                   "norm_topk_prob": True, "num_experts": experts, "num_experts_per_tok": 2,
                   "output_router_logits": False, "router_aux_loss_coef": 0.001})
    return config, t, ["model-%05d-of-00003.safetensors" % i for i in (1, 2, 3)]


def llama_4_scout():
    d, f, f_mlp, heads, kv, hd, layers, vocab, experts = 128, 64, 256, 4, 2, 32, 2, 512, 4
    text = {"attention_chunk_size": 8192, "attn_scale": 0.1, "attn_temperature_tuning": 4,
            "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008], "floor_scale": 8192,
            "head_dim": hd, "hidden_act": "silu", "hidden_size": d, "interleave_moe_layer_step": 1,
            "intermediate_size": f, "intermediate_size_mlp": f_mlp, "max_position_embeddings": 10485760,
            "model_type": "llama4_text", "no_rope_layers": [1 if (i + 1) % 4 else 0 for i in range(layers)],
            "num_attention_heads": heads, "num_experts_per_tok": 1, "num_hidden_layers": layers,
            "num_key_value_heads": kv, "num_local_experts": experts, "pad_token_id": 200018,
            "rms_norm_eps": 1e-05,
            "rope_scaling": {"factor": 16.0, "high_freq_factor": 1.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"},
            "rope_theta": 500000.0, "router_aux_loss_coef": 0.001, "torch_dtype": "bfloat16",
            "use_qk_norm": True, "vocab_size": vocab}
    vision = {"model_type": "llama4_vision_model", "hidden_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 128, "image_size": 336, "patch_size": 14,
              "pixel_shuffle_ratio": 0.5, "projector_input_dim": 128, "projector_output_dim": 128,
              "vision_output_dim": 128, "multi_modal_projector_bias": False}
    config = {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
              "boi_token_index": 200080, "eoi_token_index": 200081, "image_token_index": 200092,
              "tie_word_embeddings": False, "transformers_version": "4.51.0", "text_config": text,
              "vision_config": vision}
    m = "language_model.model."
    t = [(m + "embed_tokens.weight", "BF16", [vocab, d])]
    for i in range(layers):
        p = m + "layers.%d." % i
        t += [(p + "self_attn.q_proj.weight", "BF16", [heads * hd, d]),
              (p + "self_attn.k_proj.weight", "BF16", [kv * hd, d]),
              (p + "self_attn.v_proj.weight", "BF16", [kv * hd, d]),
              (p + "self_attn.o_proj.weight", "BF16", [d, heads * hd]),
              (p + "input_layernorm.weight", "BF16", [d]), (p + "post_attention_layernorm.weight", "BF16", [d]),
              (p + "feed_forward.router.weight", "BF16", [experts, d]),
              (p + "feed_forward.experts.gate_up_proj", "BF16", [experts, d, 2 * f]),
              (p + "feed_forward.experts.down_proj", "BF16", [experts, f, d]),
              (p + "feed_forward.shared_expert.gate_proj.weight", "BF16", [f, d]),
              (p + "feed_forward.shared_expert.up_proj.weight", "BF16", [f, d]),
              (p + "feed_forward.shared_expert.down_proj.weight", "BF16", [d, f])]
    t += [(m + "norm.weight", "BF16", [d]), ("language_model.lm_head.weight", "BF16", [vocab, d])]
    v = "vision_model."
    t += [(v + "class_embedding", "BF16", [64]), (v + "positional_embedding_vlm", "BF16", [577, 64]),
          (v + "patch_embedding.linear.weight", "BF16", [64, 588]),
          (v + "layernorm_pre.weight", "BF16", [64]), (v + "layernorm_pre.bias", "BF16", [64]),
          (v + "model.layers.0.self_attn.q_proj.weight", "BF16", [64, 64]),
          (v + "model.layers.0.self_attn.q_proj.bias", "BF16", [64]),
          (v + "model.layers.0.mlp.fc1.weight", "BF16", [128, 64]),
          (v + "vision_adapter.mlp.fc1.weight", "BF16", [128, 256]),
          ("multi_modal_projector.linear_1.weight", "BF16", [d, 128])]
    return config, t, ["model-%05d-of-00002.safetensors" % i for i in (1, 2)]


RELEASES = {"deepseek-v3": deepseek_v3, "gpt-oss-20b": gpt_oss_20b, "llama-3.1-8b": llama_3_1_8b,
            "llama-3.2-1b": llama_3_2_1b, "qwen3-0.6b": qwen3_0_6b, "qwen3-30b-a3b": qwen3_30b_a3b,
            "llama-4-scout": llama_4_scout}


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.split("\n\n")[1])  # the usage: OUT_DIR comes first
    MODES.update(a for a in sys.argv[2:] if a.startswith("--") and "=" not in a)
    OPTIONS.update(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--") and "=" in a)
    out = sys.argv[1]
    for name in [a for a in sys.argv[2:] if not a.startswith("--")] or RELEASES:
        config, tensors, shards = RELEASES[name]()
        write_release(os.path.join(out, name), config, tensors, shards)


if __name__ == "__main__":
    main()
