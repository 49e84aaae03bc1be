"""Native checkpoints written by torchtitan's own code, one generation at a time.

Runs in the reference environment (scripts/refenv.sh run), which has PyTorch, safetensors and
transformers but not torchtitan: tests/generations/make_fixtures.sh exports the torchtitan
source tree of a generation's commit from a git mirror and passes its path here. Modules that
only training needs and the environment lacks are replaced by inert stubs (STUBS below); the
model classes, their configs and the StateDictAdapter are torchtitan's own.

  torchtitan_fixtures.py make TREE GENERATION OUT_DIR
      for every model of GENERATION: init it (seeded), save its state_dict() as
      OUT_DIR/<name>/native.safetensors (and DCP for the first), and its adapter's to_hf as
      OUT_DIR/<name>/hf/model.safetensors
  torchtitan_fixtures.py load TREE GENERATION NAME CHECKPOINT.safetensors
      build model NAME of GENERATION and load_state_dict(strict=True) the checkpoint (the
      file's tensors, as ckconv wrote them); then check every tensor is bit-equal
"""

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types

import torch
import torch.distributed  # noqa: F401  (imported before the stub finder is installed)
import torch.multiprocessing  # noqa: F401

# Imports torchtitan makes for training only (distributed kernels, CLI parsing, SPMD type
# annotations); the models never call them while being built or saved.
STUBS = {
    "2026-08": ["spmd_types", "tyro", "torchtitan.distributed.minimal_async_ep"],
}


class _Anything:
    """Stands for any attribute of a stubbed module: callable, subscriptable, a base class."""

    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # used as a decorator
        return _Anything(self._name + "()")

    def __getattr__(self, name):
        return _Anything(self._name + "." + name)

    def __getitem__(self, key):
        return _Anything(self._name)

    def __mro_entries__(self, bases):
        return (object,)

    def __or__(self, other):
        return _Anything(self._name)

    __ror__ = __or__


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(self.__name__ + "." + name)


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.names):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _import_torchtitan(tree, generation):
    sys.path.insert(0, tree)
    sys.meta_path.insert(0, _StubFinder(STUBS.get(generation, [])))


# --- models of each generation: small configs built with torchtitan's own builders ---------


def _models_2026_08():
    from torchtitan.models import llama3, deepseek_v3
    from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm

    def llama3_tiny():
        dim, heads, vocab = 64, 4, 256
        config = llama3.Llama3Model.Config(
            dim=dim,
            vocab_size=vocab,
            tok_embeddings=Embedding.Config(num_embeddings=vocab, embedding_dim=dim),
            norm=RMSNorm.Config(normalized_shape=dim),
            lm_head=Linear.Config(in_features=dim, out_features=vocab),
            layers=llama3._build_llama3_layers(
                fuse_qkv=True,  # torchtitan's default since 2026-06-24; saved split
                n_layers=2, dim=dim, n_heads=heads, n_kv_heads=2, hidden_dim=96,
                rope=ComplexRoPE.Config(dim=dim // heads, max_context_length=256,
                                        theta=500000, scaling="llama"),
                attn_backend="flex",
            ),
        )
        ckconv = {"family": "llama3", "base_flavor": "debugmodel",
                  "overrides": {"dim": dim, "n_layers": 2, "n_heads": heads, "n_kv_heads": 2,
                          "vocab_size": vocab, "hidden_dim": 96, "max_seq_len": 256}}
        return config, llama3.Llama3StateDictAdapter, ckconv

    def deepseek_v3_tiny_mtp():
        dim, vocab = 64, 256
        layers = deepseek_v3._build_dsv3_layers(
            n_layers=2, n_dense_layers=1, dim=dim, n_heads=2, q_lora_rank=0, kv_lora_rank=32,
            qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, mscale=0.70,
            dense_hidden_dim=96, moe_hidden_dim=32, num_experts=12, num_shared_experts=1,
            router_top_k=2, router_score_func="softmax", attn_backend="flex",
            moe_comm_backend="standard", non_blocking_capacity_factor=None,
            rope=ComplexRoPE.Config(dim=8, max_context_length=256, theta=10000.0,
                                    scaling="yarn", rope_factor=40.0, beta_fast=32.0,
                                    beta_slow=1.0, original_seq_len=4096),
        )
        config = deepseek_v3.DeepSeekV3Model.Config(
            vocab_size=vocab, dim=dim,
            tok_embeddings=Embedding.Config(num_embeddings=vocab, embedding_dim=dim),
            norm=RMSNorm.Config(normalized_shape=dim),
            lm_head=Linear.Config(in_features=dim, out_features=vocab),
            layers=layers,
            mtp_layers=deepseek_v3._build_mtp_layers(layers[-1], dim=dim, num_mtp_layers=1),
        )
        ckconv = {"family": "deepseek_v3", "base_flavor": "debugmodel",
                  "overrides": {"dim": dim, "n_layers": 2, "n_heads": 2, "vocab_size": vocab,
                          "q_lora_rank": 0, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                          "qk_rope_head_dim": 8, "v_head_dim": 16, "dense_hidden_dim": 96,
                          "n_dense_layers": 1, "moe_hidden_dim": 32, "num_experts": 12,
                          "num_shared_experts": 1, "top_k": 2, "num_mtp_layers": 1,
                          "max_seq_len": 256}}
        return config, deepseek_v3.DeepSeekV3StateDictAdapter, ckconv

    return {"llama3_tiny": llama3_tiny, "deepseek_v3_tiny_mtp": deepseek_v3_tiny_mtp}


MODELS = {"2026-08": _models_2026_08}
COMMITS = {"2026-08": "b5bcd76c6"}


def _build(generation, name):
    config, adapter, ckconv = MODELS[generation]()[name]()
    return config.build(), config, adapter, ckconv


def _seeded_state(model, seed):
    """Every floating parameter and persistent buffer filled from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)


def make(tree, generation, out_dir):
    from safetensors.torch import save_file

    import torch.distributed.checkpoint as dcp

    names = list(MODELS[generation]().keys())
    for index, name in enumerate(names):
        model, config, adapter_class, ckconv = _build(generation, name)
        _seeded_state(model, 1234 + index)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        target = os.path.join(out_dir, name)
        os.makedirs(os.path.join(target, "hf"), exist_ok=True)
        save_file(state, os.path.join(target, "native.safetensors"))
        if index == 0:
            dcp.save(state, checkpoint_id=os.path.join(target, "native.dcp"), no_dist=True)
        adapter = adapter_class(config, None)
        hf = {k: v.contiguous() for k, v in adapter.to_hf(dict(state)).items()}
        # As HF checkpoints are saved (save_pretrained, DCP's HF writer): format metadata.
        save_file(hf, os.path.join(target, "hf", "model.safetensors"), metadata={"format": "pt"})
        ckconv.update({"name": name, "generation": generation, "seed": 1234 + index,
                       "torchtitan_commit": COMMITS[generation]})
        with open(os.path.join(target, "flavor.json"), "w") as f:
            json.dump(ckconv, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{generation} {name}: {len(state)} native tensors, {len(hf)} HF tensors")


def load(tree, generation, name, checkpoint):
    from safetensors.torch import load_file

    model, _, _, _ = _build(generation, name)
    loaded = load_file(checkpoint)
    model.load_state_dict(loaded, strict=True)
    state = model.state_dict()
    bad = [k for k, v in loaded.items() if not torch.equal(state[k], v)]
    if bad:
        sys.exit(f"{name}: {len(bad)} tensors differ after load_state_dict: {bad[:5]}")
    print(f"{generation} {name}: load_state_dict(strict=True) of {len(loaded)} tensors, bit-equal")


def main():
    command, tree, generation = sys.argv[1:4]
    _import_torchtitan(tree, generation)
    if command == "make":
        make(tree, generation, sys.argv[4])
    elif command == "load":
        load(tree, generation, sys.argv[4], sys.argv[5])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
