"""Small models of torchtitan's v0.2 generation (tag v0.2.2, 73a0e6979).

v0.2 models are built from a model-args dataclass (torchtitan.models.<family>.model.args) by
the family's model class, and their adapters take the same args. Each entry returns
(build() -> model, adapter(model) -> StateDictAdapter, ckconv flavor dict, None); hidden sizes
that v0.2 derives (llama3/llama4 from dim and multiple_of) are read back from the built
model, so the ckconv overrides state what the model really has. Routed experts run the
for-loop path (use_grouped_mm=False), which computes in float32 on CPU; the tensors saved are
the same either way.
"""

DIM, VOCAB, HEADS, KV_HEADS, HEAD_DIM = 32, 128, 4, 2, 8
EXPERTS, MOE_HIDDEN, TOP_K = 12, 16, 2


def _with_shapes(model, ckconv, hidden_keys):
    """Fills ckconv overrides from the built model: {override: (state key, dim index)}."""
    state = model.state_dict()
    for override, (key, index) in hidden_keys.items():
        ckconv["overrides"][override] = int(state[key].shape[index])
    return ckconv


def llama3_tiny():
    from torchtitan.models.llama3.model.args import TransformerModelArgs
    from torchtitan.models.llama3.model.model import Transformer
    from torchtitan.models.llama3.model.state_dict_adapter import Llama3StateDictAdapter

    args = TransformerModelArgs(dim=DIM, n_layers=2, n_heads=HEADS, n_kv_heads=KV_HEADS,
                                vocab_size=VOCAB, multiple_of=16, rope_theta=500000,
                                max_seq_len=256)
    ckconv = {"family": "llama3", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "vocab_size": VOCAB,
        "max_seq_len": 256}}

    def build():
        model = Transformer(args)
        _with_shapes(model, ckconv, {"hidden_dim": ("layers.0.feed_forward.w1.weight", 0)})
        return model

    return build, lambda: Llama3StateDictAdapter(args, None), ckconv, None


def llama4_tiny_moe():
    """Every layer MoE (as the 17bx16e flavor): v0.2's adapter drops dense layers' FFNs."""
    from torchtitan.models.llama4.model.args import RoPEScalingArgs, TransformerModelArgs
    from torchtitan.models.llama4.model.model import Transformer
    from torchtitan.models.llama4.model.state_dict_adapter import Llama4StateDictAdapter
    from torchtitan.models.moe import MoEArgs

    args = TransformerModelArgs(dim=DIM, n_layers=2, n_heads=HEADS, n_kv_heads=KV_HEADS,
                                vocab_size=VOCAB, multiple_of=16, rope_theta=500000,
                                rope_scaling_args=RoPEScalingArgs(), max_seq_len=256,
                                moe_args=MoEArgs(num_experts=EXPERTS, use_grouped_mm=False),
                                interleave_moe_layer_step=1, every_n_layers_nope=4,
                                fixed_attn_block_size=256)
    ckconv = {"family": "llama4", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "vocab_size": VOCAB,
        "num_experts": EXPERTS, "top_k": 1, "interleave_moe_layer_step": 1,
        "every_n_layers_nope": 4, "fixed_attn_block_size": 256, "max_seq_len": 256,
        "multiple_of": 16}}

    def build():
        model = Transformer(args)
        _with_shapes(model, ckconv, {
            "moe_hidden_dim": ("layers.0.moe.experts.w1", 1),
            "shared_experts_hidden_dim": ("layers.0.moe.shared_experts.w1.weight", 0)})
        return model

    return build, lambda: Llama4StateDictAdapter(args, None), ckconv, None


def deepseek_v3_tiny():
    from torchtitan.models.deepseek_v3.model.args import DeepSeekV3ModelArgs
    from torchtitan.models.deepseek_v3.model.model import DeepSeekV3Model
    from torchtitan.models.deepseek_v3.model.state_dict_adapter import (
        DeepSeekV3StateDictAdapter)
    from torchtitan.models.moe import MoEArgs

    args = DeepSeekV3ModelArgs(
        vocab_size=VOCAB, dim=DIM, inter_dim=48, moe_inter_dim=MOE_HIDDEN, n_layers=2,
        n_dense_layers=1, n_heads=2,
        # sigmoid routing as the released models: HF's DeepseekV3 has no softmax router
        moe_args=MoEArgs(num_experts=EXPERTS, num_shared_experts=1, top_k=TOP_K,
                         score_func="sigmoid", route_norm=True, score_before_experts=False,
                         use_grouped_mm=False),
        q_lora_rank=0, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
        mscale=0.70, max_seq_len=16384)  # YaRN applies beyond original_seq_len (4096) only
    args.moe_impl = "standard"  # what update_from_config sets from the default job config
    ckconv = {"family": "deepseek_v3", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": 2, "vocab_size": VOCAB, "q_lora_rank": 0,
        "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
        "dense_hidden_dim": 48, "n_dense_layers": 1, "moe_hidden_dim": MOE_HIDDEN,
        "num_experts": EXPERTS, "num_shared_experts": 1, "top_k": TOP_K, "score_func": "sigmoid", "route_norm": True,
        "max_seq_len": 16384}}
    return (lambda: DeepSeekV3Model(args), lambda: DeepSeekV3StateDictAdapter(args, None),
            ckconv, None)


def qwen3_tiny(moe=False):
    """Dense with tied embeddings (as the debugmodel flavor), or MoE with 12 experts."""
    from torchtitan.models.moe import MoEArgs
    from torchtitan.models.qwen3.model.args import Qwen3ModelArgs
    from torchtitan.models.qwen3.model.model import Qwen3Model
    from torchtitan.models.qwen3.model.state_dict_adapter import Qwen3StateDictAdapter

    sizes = dict(vocab_size=VOCAB, max_seq_len=256, head_dim=HEAD_DIM, dim=DIM, n_layers=2,
                 n_heads=HEADS, n_kv_heads=KV_HEADS, qk_norm=True, rope_theta=1000000)
    overrides = {"dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS,
                 "head_dim": HEAD_DIM, "vocab_size": VOCAB, "max_seq_len": 256}
    if moe:
        args = Qwen3ModelArgs(hidden_dim=64, moe_enabled=True, moe_inter_dim=MOE_HIDDEN,
                              moe_args=MoEArgs(num_experts=EXPERTS, num_shared_experts=0,
                                               top_k=TOP_K, score_func="softmax",
                                               route_norm=True, route_scale=1.0,
                                               score_before_experts=False,
                                               use_grouped_mm=False), **sizes)
        overrides.update({"num_experts": EXPERTS, "top_k": TOP_K, "moe_hidden_dim": MOE_HIDDEN,
                          "hidden_dim": 64, "enable_weight_tying": False})
    else:
        args = Qwen3ModelArgs(hidden_dim=64, enable_weight_tying=True, **sizes)
        overrides.update({"hidden_dim": 64, "enable_weight_tying": True})
    return (lambda: Qwen3Model(args), lambda: Qwen3StateDictAdapter(args, None),
            {"family": "qwen3", "overrides": overrides}, None)


def gpt_oss_tiny():
    from torchtitan.models.gpt_oss.model.args import GptOssModelArgs
    from torchtitan.models.gpt_oss.model.model import GptOssModel
    from torchtitan.models.gpt_oss.model.state_dict_adapter import GptOssStateDictAdapter
    from torchtitan.models.moe import MoEArgs

    args = GptOssModelArgs(
        dim=DIM, n_layers=2, vocab_size=VOCAB, moe_inter_dim=MOE_HIDDEN, head_dim=HEAD_DIM,
        n_heads=HEADS, n_kv_heads=KV_HEADS, max_seq_len=256,
        moe_args=MoEArgs(num_experts=4, num_shared_experts=0, score_func="softmax",
                         route_norm=True, route_scale=1.0, gate_bias=True,
                         score_before_experts=False, top_k=TOP_K, use_grouped_mm=False,
                         load_balance_coeff=1e-3))
    ckconv = {"family": "gpt_oss", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "vocab_size": VOCAB, "moe_hidden_dim": MOE_HIDDEN, "num_experts": 4, "top_k": TOP_K,
        "max_seq_len": 256}}
    return (lambda: GptOssModel(args), lambda: GptOssStateDictAdapter(args, None), ckconv, None)


def models(generation):
    """name -> builder() of the v0.2 models; the first one is also saved as DCP."""
    return {
        "llama3_tiny": llama3_tiny,
        "deepseek_v3_tiny": deepseek_v3_tiny,
        "qwen3_tiny": qwen3_tiny,
        "qwen3_tiny_moe": lambda: qwen3_tiny(moe=True),
        "llama4_tiny_moe": llama4_tiny_moe,
        "gpt_oss_tiny": gpt_oss_tiny,
    }
