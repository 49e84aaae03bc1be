"""Small models of torchtitan's 2026-06 (43e52fd01) and 2026-08 (b5bcd76c6) generations.

Each entry builds its config with the generation's own builder functions
(torchtitan.models.<family>._build_*_layers and friends) at tiny sizes and returns
(config, adapter class, ckconv flavor dict, why its HF bytes are not written or None).
Attention runs on SDPA at 2026-06 (plain causal, no masks to build) and on FlexAttention at
2026-08 (which refuses SDPA); the saved tensors do not depend on the attention backend.
The ckconv flavor's overrides restate the same sizes for --set-from. The two generations
differ in keyword names (RoPE `max_seq_len` then `max_context_length`) and in what their
adapters can export; both are spelled out per model.
"""

# Sizes shared by the new tiny models: a few tens of KB of float32 each.
DIM, VOCAB, HEADS, KV_HEADS, HEAD_DIM = 32, 128, 4, 2, 8
EXPERTS, MOE_HIDDEN, TOP_K = 12, 16, 2
# deepseek_v3's context is longer than YaRN's original 4096 (as its debugmodel's): torchtitan
# applies YaRN only beyond it, transformers whenever config.json names it.
DSV3_CONTEXT = 16384

# Why the generation's to_hf output is not a usable reference (read in its adapter).
BROKEN_2026_06_EXPERTS = ("43e52fd01's adapter still maps the unsuffixed moe.experts.w1/w2/w3 "
                          "while the model saves w1_EFD/w2_EDF/w3_EFD")
BROKEN_GPT_OSS_EXPERTS = ("the adapter maps unsuffixed mlp1_weight/... while the model saves "
                          "mlp1_weight_EGD/...: to_hf drops every expert tensor")


def _attention(generation):
    # 2026-08 refuses SDPA ("positions are always available"): FlexAttention with masks.
    return "sdpa" if generation == "2026-06" else "flex"


def _rope_len(generation):
    return "max_seq_len" if generation == "2026-06" else "max_context_length"


def _head(common, dim, vocab, tied=False, norm=None):
    """Embedding, final norm (the family's own where it sets an eps) and head configs."""
    extra = {"enable_weight_tying": True} if tied else {}
    return dict(vocab_size=vocab, dim=dim,
                tok_embeddings=common.Embedding.Config(num_embeddings=vocab, embedding_dim=dim),
                norm=norm or common.RMSNorm.Config(normalized_shape=dim),
                lm_head=common.Linear.Config(in_features=dim, out_features=vocab), **extra)


def llama3_tiny(generation, common, small=False):
    """The 2026-08 llama3_tiny (fused QKV flavor) and a smaller copy for other generations."""
    from torchtitan.models import llama3

    dim, heads, vocab, hidden = (DIM, HEADS, VOCAB, 64) if small else (64, 4, 256, 96)
    fused = {"fuse_qkv": True} if generation == "2026-08" else {}
    config = llama3.Llama3Model.Config(
        **_head(common, dim, vocab),
        layers=llama3._build_llama3_layers(
            n_layers=2, dim=dim, n_heads=heads, n_kv_heads=2, hidden_dim=hidden,
            rope=common.ComplexRoPE.Config(dim=dim // heads, theta=500000, scaling="llama",
                                           **{_rope_len(generation): 256}),
            attn_backend=_attention(generation), **fused),
    )
    ckconv = {"family": "llama3", "overrides": {
        "dim": dim, "n_layers": 2, "n_heads": heads, "n_kv_heads": 2, "vocab_size": vocab,
        "hidden_dim": hidden, "max_seq_len": 256}}
    return config, llama3.Llama3StateDictAdapter, ckconv, None


def deepseek_v3_tiny(generation, common, mtp=False):
    """One dense and one MoE layer (12 routed experts, 1 shared); one MTP block if mtp.
    Sigmoid routing with normalised weights, as the released models (671B flavor): HF's
    DeepseekV3 has no softmax router, so the debugmodel's softmax could not be compared."""
    from torchtitan.models import deepseek_v3

    dim, vocab, kv_lora, nope, rope_dim, v_dim, dense = (
        (64, 256, 32, 16, 8, 16, 96) if mtp else (DIM, VOCAB, 16, 8, 4, 8, 48))
    moe_hidden = 32 if mtp else MOE_HIDDEN
    layers = deepseek_v3._build_dsv3_layers(
        n_layers=2, n_dense_layers=1, dim=dim, n_heads=2, q_lora_rank=0, kv_lora_rank=kv_lora,
        qk_nope_head_dim=nope, qk_rope_head_dim=rope_dim, v_head_dim=v_dim, mscale=0.70,
        dense_hidden_dim=dense, moe_hidden_dim=moe_hidden, num_experts=EXPERTS,
        num_shared_experts=1, router_top_k=TOP_K, router_score_func="sigmoid", router_route_norm=True,
        attn_backend=_attention(generation), moe_comm_backend="standard", non_blocking_capacity_factor=None,
        rope=common.ComplexRoPE.Config(dim=rope_dim, theta=10000.0, scaling="yarn",
                                       rope_factor=40.0, beta_fast=32.0, beta_slow=1.0,
                                       original_seq_len=4096,
                                       **{_rope_len(generation): DSV3_CONTEXT}),
    )
    extra = {}
    if mtp:
        extra["mtp_layers"] = deepseek_v3._build_mtp_layers(layers[-1], dim=dim, num_mtp_layers=1)
    config = deepseek_v3.DeepSeekV3Model.Config(**_head(common, dim, vocab), layers=layers, **extra)
    overrides = {"dim": dim, "n_layers": 2, "n_heads": 2, "vocab_size": vocab, "q_lora_rank": 0,
                 "kv_lora_rank": kv_lora, "qk_nope_head_dim": nope, "qk_rope_head_dim": rope_dim,
                 "v_head_dim": v_dim, "dense_hidden_dim": dense, "n_dense_layers": 1,
                 "moe_hidden_dim": moe_hidden, "num_experts": EXPERTS, "num_shared_experts": 1,
                 "top_k": TOP_K, "score_func": "sigmoid", "route_norm": True,
                 "max_seq_len": DSV3_CONTEXT}
    if mtp:
        overrides["num_mtp_layers"] = 1
    broken = BROKEN_2026_06_EXPERTS + " (to_hf raises KeyError)" if generation == "2026-06" else None
    return config, deepseek_v3.DeepSeekV3StateDictAdapter, {"family": "deepseek_v3",
                                                             "overrides": overrides}, broken


def qwen3_tiny(generation, common, moe=False):
    """Dense with tied embeddings (as the debugmodel flavor), or MoE with 12 experts."""
    from torchtitan.models import qwen3

    rope = common.CosSinRoPE.Config(dim=HEAD_DIM, theta=1000000.0, **{_rope_len(generation): 256})
    sizes = dict(n_layers=2, dim=DIM, n_heads=HEADS, n_kv_heads=KV_HEADS, head_dim=HEAD_DIM,
                 attn_backend=_attention(generation), rope=rope)
    overrides = {"dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS,
                 "head_dim": HEAD_DIM, "vocab_size": VOCAB, "max_seq_len": 256}
    if moe:
        layers = qwen3._build_qwen3_moe_layers(moe_hidden_dim=MOE_HIDDEN, num_experts=EXPERTS,
                                               top_k=TOP_K, moe_comm_backend="standard", **sizes)
        config = qwen3.Qwen3Model.Config(**_head(common, DIM, VOCAB, norm=qwen3._qwen3_norm(DIM)),
                                         layers=layers)
        overrides.update({"num_experts": EXPERTS, "top_k": TOP_K, "moe_hidden_dim": MOE_HIDDEN,
                          "enable_weight_tying": False})
        broken = (BROKEN_2026_06_EXPERTS + " (to_hf silently drops them)"
                  if generation == "2026-06" else None)
    else:
        layers = qwen3._build_qwen3_layers(hidden_dim=64, **sizes)
        config = qwen3.Qwen3Model.Config(
            **_head(common, DIM, VOCAB, tied=True, norm=qwen3._qwen3_norm(DIM)), layers=layers)
        overrides.update({"hidden_dim": 64, "enable_weight_tying": True})
        broken = None
    return config, qwen3.Qwen3StateDictAdapter, {"family": "qwen3", "overrides": overrides}, broken


def llama4_tiny_moe(generation, common):
    """2026-06 only (llama4 was deleted right after): one dense and one MoE layer, 12 experts."""
    from torchtitan.models import llama4

    layers = llama4._build_llama4_layers(
        n_layers=2, dim=DIM, n_heads=HEADS, n_kv_heads=KV_HEADS, hidden_dim=64,
        moe_hidden_dim=MOE_HIDDEN, num_experts=EXPERTS, every_n_layers_nope=4,
        interleave_moe_layer_step=2, fixed_attn_block_size=256, attn_backend=_attention(generation),
        moe_comm_backend="standard",
        rope=common.ComplexRoPE.Config(dim=DIM // HEADS, max_seq_len=256, theta=500000,
                                       scaling="llama", scaling_factor=16.0, high_freq_factor=1.0),
    )
    config = llama4.Llama4Model.Config(**_head(common, DIM, VOCAB), layers=layers)
    ckconv = {"family": "llama4", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "vocab_size": VOCAB,
        "hidden_dim": 64, "moe_hidden_dim": MOE_HIDDEN, "shared_experts_hidden_dim": MOE_HIDDEN,
        "num_experts": EXPERTS, "interleave_moe_layer_step": 2, "fixed_attn_block_size": 256,
        "max_seq_len": 256}}
    broken = ("43e52fd01's llama4 adapter maps unsuffixed moe.experts.w1/w2/w3: to_hf silently "
              "drops every routed expert")
    return config, llama4.Llama4StateDictAdapter, ckconv, broken


def gpt_oss_tiny(generation, common):
    """Two layers (sliding and full attention), 4 experts with biases, small attention."""
    import dataclasses

    from torchtitan.models import gpt_oss

    rope = common.CosSinRoPE.Config(dim=HEAD_DIM, theta=150000.0, scaling="yarn", rope_factor=32,
                                    original_seq_len=4096, **{_rope_len(generation): 256},
                                    **({"beta_slow": 32.0, "beta_fast": 1.0}
                                       if generation == "2026-06" else
                                       {"beta_fast": 32.0, "beta_slow": 1.0, "truncate": False}))
    extra = {} if generation == "2026-06" else {"attn_backend": "flex", "fuse_qkv": True}
    layers = gpt_oss._build_gptoss_layers(
        dim=DIM, n_layers=2, hidden_dim=MOE_HIDDEN, num_experts=4, top_k=TOP_K,
        load_balance_coeff=1e-3, moe_comm_backend="standard", rope=rope,
        **({"score_before_experts": False} if generation == "2026-06" else {}), **extra)
    # The builder fixes the released attention sizes (64 heads of 64); the same per-layer
    # attention builder is called again with small ones.
    for layer_id, layer in enumerate(layers):
        attention = gpt_oss._make_gptoss_attn_config(
            dim=DIM, layer_id=layer_id, n_heads=HEADS, n_kv_heads=KV_HEADS, head_dim=HEAD_DIM,
            rope=rope, **extra,
            **({"sliding_window_size": 128 if layer_id % 2 == 0 else None}
               if generation != "2026-06" else {}))
        layers[layer_id] = dataclasses.replace(layer, attention=attention)
    config = gpt_oss.GptOssModel.Config(**_head(common, DIM, VOCAB), layers=layers)
    ckconv = {"family": "gpt_oss", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "vocab_size": VOCAB, "moe_hidden_dim": MOE_HIDDEN, "num_experts": 4, "top_k": TOP_K,
        "max_seq_len": 256}}
    return config, gpt_oss.GptOssStateDictAdapter, ckconv, BROKEN_GPT_OSS_EXPERTS


def _builder(result):
    config, adapter_class, ckconv, broken = result
    return config.build, lambda: adapter_class(config, None), ckconv, broken


def models(generation):
    """name -> builder() of GENERATION's models; the first one is also saved as DCP.
    A builder returns (build() -> model, adapter() -> StateDictAdapter, ckconv dict, broken)."""
    from torchtitan.models import common

    if generation == "2026-08":
        return {
            "llama3_tiny": lambda: _builder(llama3_tiny(generation, common)),
            "deepseek_v3_tiny_mtp": lambda: _builder(deepseek_v3_tiny(generation, common, True)),
            "qwen3_tiny_moe": lambda: _builder(qwen3_tiny(generation, common, moe=True)),
            "gpt_oss_tiny": lambda: _builder(gpt_oss_tiny(generation, common)),
        }
    return {
        "llama3_tiny": lambda: _builder(llama3_tiny(generation, common, small=True)),
        "deepseek_v3_tiny": lambda: _builder(deepseek_v3_tiny(generation, common)),
        "qwen3_tiny": lambda: _builder(qwen3_tiny(generation, common)),
        "qwen3_tiny_moe": lambda: _builder(qwen3_tiny(generation, common, moe=True)),
        "llama4_tiny_moe": lambda: _builder(llama4_tiny_moe(generation, common)),
        "gpt_oss_tiny": lambda: _builder(gpt_oss_tiny(generation, common)),
    }
