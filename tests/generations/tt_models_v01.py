"""Small models of torchtitan v0.1.0 (f7084fc78) and what its checkpoint manager saves of them.

v0.1.0 has models/llama3 and experiments/llama4 (its experiments/deepseek_v3 is a copy of the
HF modeling code that only loads HF safetensors and never saves a checkpoint). There is no
StateDictAdapter at v0.1.0: the HF reference of each model is v0.2.2's adapter applied to the
same weights (`hf_v01` below, run in the v0.2 tree), after a check that v0.2.2's model computes
the same logits from them as v0.1.0's, which pins the v0.1.0 -> v0.2 layout used here.

Per model, OUT_DIR/<name>/ gets:
  native.safetensors  the model-only state: model.state_dict() without `freqs_cis`, which
                      v0.1.0's excluded_parameters_for_model_only pops
  export.dcp/         that state as v0.1.0's _save_last_step saves it (last_save_model_weights_only,
                      export_dtype float32): dcp.save of the flat model state dict
  full.dcp/           (llama3) a full checkpoint as CheckpointManager.save writes it: dcp.save of
                      {model: ModelWrapper, optimizer: OptimizersContainer (AdamW, one step),
                      lr_scheduler: LRSchedulersContainer, dataloader: {dp_rank_0, world_size},
                      train_state: {step}}, unflattened, so model keys are `model.<fqn>`
  logits.safetensors  v0.1.0's forward (llama3 only: v0.1.0's llama4 router is a softmax,
                      which transformers' Llama4 cannot express)
"""

import os
import pickle

DIM, VOCAB, HEADS, KV_HEADS = 16, 32, 2, 1
EXPERTS = 4


def _llama3_args():
    from torchtitan.models.llama3.model.args import TransformerModelArgs

    return TransformerModelArgs(dim=DIM, n_layers=1, n_heads=HEADS, n_kv_heads=KV_HEADS,
                                vocab_size=VOCAB, multiple_of=16, rope_theta=500000,
                                max_seq_len=32)


def llama3_tiny():
    from torchtitan.models.llama3.model.model import Transformer

    ckconv = {"family": "llama3", "overrides": {
        "dim": DIM, "n_layers": 1, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "vocab_size": VOCAB,
        "max_seq_len": 32, "rope_theta": 500000, "rope_scaling": "none"}}

    def build():
        model = Transformer(_llama3_args())
        ckconv["overrides"]["hidden_dim"] = int(model.layers["0"].feed_forward.w1.weight.shape[0])
        return model

    return build, ckconv, True, True


def _llama4_args():
    from torchtitan.experiments.llama4.model.args import TransformerModelArgs

    # Every layer MoE: v0.2.2's adapter, the HF reference, drops dense layers' FFNs.
    return TransformerModelArgs(dim=DIM, n_layers=2, n_heads=HEADS, n_kv_heads=KV_HEADS,
                                vocab_size=VOCAB, multiple_of=16, rope_theta=500000,
                                max_seq_len=32, num_experts=EXPERTS, interleave_moe_layer_step=1,
                                use_grouped_mm=False)


def llama4_tiny_moe():
    from torchtitan.experiments.llama4.model.model import Transformer

    ckconv = {"family": "llama4", "overrides": {
        "dim": DIM, "n_layers": 2, "n_heads": HEADS, "n_kv_heads": KV_HEADS, "vocab_size": VOCAB,
        "num_experts": EXPERTS, "top_k": 1, "interleave_moe_layer_step": 1, "max_seq_len": 32, "multiple_of": 16, "rope_theta": 500000,
        "rope_scaling": "none"}}

    def build():
        model = Transformer(_llama4_args())
        hidden = int(model.layers["0"].moe.experts.w1.shape[2])  # [E, D, F]
        ckconv["overrides"].update({"moe_hidden_dim": hidden, "shared_experts_hidden_dim": hidden})
        return model

    return build, ckconv, False, False


def models():
    """name -> builder() returning (build, ckconv flavor dict, whether logits are stored,
    whether a full checkpoint is: one suffices, as DCP stores each optimizer option of each
    parameter as its own item of about 1 KB)."""
    return {"llama3_tiny": llama3_tiny, "llama4_tiny_moe": llama4_tiny_moe}


def _train_one_step(model):
    """v0.1.0's optimizer and LR scheduler containers after one AdamW step on seeded grads."""
    import torch
    from torchtitan.components.lr_scheduler import LRSchedulersContainer
    from torchtitan.components.optimizer import OptimizersContainer

    optimizers = OptimizersContainer([model], torch.optim.AdamW,
                                     {"lr": 8e-4, "weight_decay": 0.1, "fused": False})
    schedulers = LRSchedulersContainer(optimizers, lambda step: min(1.0, (step + 1) / 2))
    generator = torch.Generator().manual_seed(1)
    for parameter in model.parameters():
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 0.01
    optimizers.step()
    schedulers.step()
    return optimizers, schedulers


def save(name, index, out_dir, seeded_state, forward):
    """Writes OUT_DIR/<name>/ (module docstring) for model `name`; returns its flavor dict."""
    import torch
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import save_file
    from torchtitan.components.checkpoint import ModelWrapper, excluded_parameters_for_model_only

    build, ckconv, with_logits, with_full = models()[name]()
    model = build()
    seed = 1334 + index
    seeded_state(model, seed, ckconv["family"])
    with torch.no_grad():  # torchtitan's initial values of the routing statistics
        for buffer_name, buffer in model.named_buffers():
            if buffer_name.endswith(".tokens_per_expert"):
                buffer.zero_()
    optimizers, schedulers = _train_one_step(model)
    target = os.path.join(out_dir, name)
    os.makedirs(target, exist_ok=True)
    wrapper = ModelWrapper(model)
    model_only = {k: v.detach().clone().contiguous() for k, v in wrapper.state_dict().items()
                  if k not in excluded_parameters_for_model_only}
    save_file(model_only, os.path.join(target, "native.safetensors"))
    dcp.save(model_only, checkpoint_id=os.path.join(target, "export.dcp"), no_dist=True)
    states = {"model": wrapper, "optimizer": optimizers, "lr_scheduler": schedulers,
              "dataloader": {"dp_rank_0": pickle.dumps({"sample_idx": 64}), "world_size": 1},
              "train_state": {"step": 1}}
    if with_full:
        dcp.save(states, checkpoint_id=os.path.join(target, "full.dcp"), no_dist=True)
    tokens, logits = forward(model, VOCAB, False)
    # Kept only where transformers can compute the same; else only for hf_v01's check.
    save_file({"input_ids": tokens, "logits": logits},
              os.path.join(target, "logits.safetensors" if with_logits else "v01_logits.safetensors"))
    ckconv.update({"seed": seed, "hf_reference": "v0.2.2 to_hf of the same weights"})
    return ckconv


# --- the HF reference, run in the v0.2 (v0.2.2) tree ------------------------------------------

def _v02_llama4(state):
    """v0.2.2's llama4 with v0.1.0's routing (softmax, scores applied before the experts, one
    shared expert) and the state in v0.2's layout: experts and the shared expert stored
    [E, F, D] for w1/w3 ([E, D, F] for w2), the shared expert as a FeedForward."""
    from torchtitan.models.llama4.model.args import TransformerModelArgs
    from torchtitan.models.llama4.model.model import Transformer
    from torchtitan.models.llama4.model.state_dict_adapter import Llama4StateDictAdapter
    from torchtitan.models.moe import MoEArgs

    args = TransformerModelArgs(
        dim=DIM, n_layers=2, n_heads=HEADS, n_kv_heads=KV_HEADS, vocab_size=VOCAB,
        multiple_of=16, rope_theta=500000, max_seq_len=32, interleave_moe_layer_step=1,
        moe_args=MoEArgs(num_experts=EXPERTS, num_shared_experts=1, top_k=1,
                         score_func="softmax", route_norm=False, score_before_experts=True,
                         use_grouped_mm=False))
    converted = {}
    for key, value in state.items():
        if key.endswith(".moe.tokens_per_expert"):
            continue
        if ".moe.experts.w" in key:
            value = value.transpose(-1, -2)
        elif ".moe.shared_expert." in key:
            key = key.replace(".shared_expert.", ".shared_experts.") + ".weight"
            value = value[0].transpose(-1, -2)
        converted[key] = value.contiguous()
    return Transformer(args), converted, Llama4StateDictAdapter(args, None)


def _v02_llama3(state):
    from torchtitan.models.llama3.model.args import TransformerModelArgs
    from torchtitan.models.llama3.model.model import Transformer
    from torchtitan.models.llama3.model.state_dict_adapter import Llama3StateDictAdapter

    args = TransformerModelArgs(dim=DIM, n_layers=1, n_heads=HEADS, n_kv_heads=KV_HEADS,
                                vocab_size=VOCAB, multiple_of=16, rope_theta=500000,
                                max_seq_len=32)
    return Transformer(args), dict(state), Llama3StateDictAdapter(args, None)


def hf_v01(out_dir, forward):
    """For each v0.1 fixture: load its model-only state into v0.2.2's model (strict), check
    the logits against v0.1.0's where stored (llama4: against v0.1.0's forward, recomputed by
    the caller and stored beside as v01_logits.safetensors), and save v0.2.2's to_hf."""
    from safetensors.torch import load_file, save_file

    for name, builder in (("llama3_tiny", _v02_llama3), ("llama4_tiny_moe", _v02_llama4)):
        target = os.path.join(out_dir, name)
        model, state, adapter = builder(load_file(os.path.join(target, "native.safetensors")))
        model.load_state_dict(state, strict=True)
        logits_path = os.path.join(target, "v01_logits.safetensors")
        if name == "llama4_tiny_moe":
            reference = load_file(logits_path)
            _, logits = forward(model, VOCAB, False)
            difference = (logits - reference["logits"]).abs().max().item()
            if difference > 1e-5:
                raise SystemExit(f"{name}: v0.2.2 logits differ from v0.1.0's by {difference}")
            print(f"{name}: v0.2.2 and v0.1.0 logits agree (max |diff| {difference:.2e})")
        if os.path.exists(logits_path):
            os.remove(logits_path)
        hf = {k: v.contiguous() for k, v in adapter.to_hf(state).items()}
        os.makedirs(os.path.join(target, "hf"), exist_ok=True)
        save_file(hf, os.path.join(target, "hf", "model.safetensors"), metadata={"format": "pt"})
        print(f"v0.1 {name}: v0.2.2 to_hf, {len(hf)} HF tensors")
