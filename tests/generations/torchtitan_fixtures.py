"""Native checkpoints written by torchtitan's own code, one generation at a time.

Runs in the reference environment (scripts/refenv.sh run), which has PyTorch, safetensors and
transformers but not torchtitan: tests/generations/make_fixtures.sh exports the torchtitan
source tree of a generation's commit from a git mirror, copies the model tables
(tt_models_v02.py, tt_models_2026.py) next to it and passes its path here. Modules that only
training needs and the environment lacks are replaced by inert stubs (STUBS below); the model
classes, their configs and the StateDictAdapter are torchtitan's own.

  torchtitan_fixtures.py make TREE GENERATION OUT_DIR
      for every model of GENERATION: init it (seeded), save its state_dict() as
      OUT_DIR/<name>/native.safetensors (and DCP for the first), its adapter's to_hf as
      OUT_DIR/<name>/hf/model.safetensors (unless that adapter is known broken), and its
      forward pass on fixed ids as OUT_DIR/<name>/logits.safetensors
  torchtitan_fixtures.py hf_v01 TREE v0.2 OUT_DIR
      the HF reference of the v0.1 fixtures in OUT_DIR: v0.2.2's to_hf of the same weights
      (tt_models_v01.py says why and how)
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
    "v0.1": ["tyro", "torchft", "torchtitan.components.ft", "torchtitan.components.dataloader",
             "torchtitan.components.tokenizer", "torchtitan.components.metrics",
             "torchtitan.config_manager", "torchtitan.tools.profiling"],
    "v0.2": ["tyro", "torchtitan.models.moe.kernels", "torchtitan.components.dataloader",
             "torchtitan.hf_datasets", "torchtitan.components.validate",
             "torchtitan.components.tokenizer", "torchtitan.components.metrics"],
    "2026-06": ["spmd_types", "tyro"],
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

    def __iter__(self):  # iterable as empty (else __getitem__ would make it endless)
        return iter(())

    def __enter__(self):  # used as a context manager (spmd_types' local regions)
        return self

    def __exit__(self, *exc):
        return False

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


# v0.1.0's package __init__s import every model, experiment and training component: these
# packages are registered bare (their modules import normally, their __init__ does not run).
BARE_PACKAGES = {"v0.1": ["torchtitan", "torchtitan.models", "torchtitan.experiments",
                          "torchtitan.models.llama3", "torchtitan.experiments.llama4"]}


def _import_torchtitan(tree, generation):
    sys.path.insert(0, tree)
    sys.meta_path.insert(0, _StubFinder(STUBS.get(generation, [])))
    for name in BARE_PACKAGES.get(generation, []):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(tree, *name.split("."))]
        sys.modules[name] = package


# --- models and what is saved of them -------------------------------------------------------

COMMITS = {"v0.1": "f7084fc78", "v0.2": "73a0e6979", "2026-06": "43e52fd01", "2026-08": "b5bcd76c6"}
# Families whose HF format has no slot for the MoE load-balancing bias: their expert_bias is
# left at torchtitan's initial zeros, so that from-hf (which re-creates zeros) gives the
# native checkpoint back. deepseek_v3 maps it to e_score_correction_bias and keeps its values.
ZERO_EXPERT_BIAS = {"llama4", "qwen3", "gpt_oss"}
# The token ids of the stored forward pass (batch 1).
FORWARD_TOKENS = 12


def _models(generation):
    """name -> builder() returning (build, adapter, ckconv flavor dict, broken-adapter reason)."""
    if generation == "v0.2":
        import tt_models_v02

        return tt_models_v02.models(generation)
    import tt_models_2026

    return tt_models_2026.models(generation)


def _build(generation, name):
    build, adapter, ckconv, broken = _models(generation)[name]()
    return build(), adapter, ckconv, broken


# Query/key projections get a larger spread than the rest: with every weight at 0.02 the
# attention scores are nearly zero, softmax is uniform, and a wrong Q/K head order or RoPE
# layout would not change the logits. Norm weights are 1 + noise (as trained models' are
# near 1) so that activations keep unit scale through the layers.
QK_STD, STD = 0.3, 0.02
QK_NAMES = (".wq.", ".wk.", ".wq_a.", ".wq_b.", ".wkv_a.", ".wkv_b.", ".wqkv.")


def _seeded_state(model, seed, family):
    """Every parameter and persistent floating buffer filled from one seeded generator, in
    sorted name order. Parameters, not state_dict() entries: a fused parameter (wqkv) appears
    in state_dict() only as split copies made by a save hook."""
    generator = torch.Generator().manual_seed(seed)
    saved = model.state_dict(keep_vars=True).keys()
    tensors = dict(model.named_parameters())
    tensors.update({k: v for k, v in model.named_buffers() if k in saved})
    with torch.no_grad():
        for name, tensor in sorted(tensors.items()):
            if not tensor.is_floating_point():
                continue
            std = QK_STD if any(part in name for part in QK_NAMES) else STD
            value = torch.randn(tensor.shape, generator=generator) * std
            if "norm" in name and tensor.dim() == 1:
                value += 1
            tensor.copy_(value)
            if family in ZERO_EXPERT_BIAS and ".expert_bias" in name:
                tensor.zero_()


def _grouped_mm_f32(a, b, offs=None, **kwargs):
    """torch._grouped_mm (2-D x 3-D, groups of rows ending at offs) in float32."""
    out, start = [], 0
    for group, end in enumerate(offs.tolist()):
        out.append(a[start:end].float() @ b[group].float())
        start = end
    return torch.cat(out) if out else a.new_zeros((0, b.shape[-1]), dtype=torch.float32)


def _eager_attention():
    """torchtitan compiles FlexAttention and its block masks with torch.compile, which needs a
    C++ compiler the reference environment lacks; the eager functions compute the same."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    for name, module in list(sys.modules.items()):
        if not name.startswith("torchtitan.") or module is None:
            continue
        if hasattr(module, "_compiled_create_block_mask"):
            module._compiled_create_block_mask = create_block_mask
        for value in list(vars(module).values()):
            if isinstance(value, type) and "_compiled_flex_attn" in value.__dict__:
                value._compiled_flex_attn = staticmethod(flex_attention)


def _call(model, tokens, flat_tokens):
    """One forward pass, with the attention masks each generation's FlexAttention wants."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    if flat_tokens:
        positions = torch.arange(tokens.shape[1])  # 2026-08: one document, 1-D positions
        try:
            masks = model.get_attention_masks(positions=positions)
        except TypeError:  # SDPA needs none
            masks = None
        if masks is not None:  # 2026-08 models take the tokens flattened, [T]
            return model(tokens[0], positions=positions, attention_masks=masks)
    if "attention_masks" in parameters and parameters["attention_masks"].default is inspect._empty:
        # v0.2 gpt_oss: FlexAttention masks are a required argument (causal, no tokenizer)
        return model(tokens, model.get_attention_masks(tokens, None))
    if "gpt_oss" in type(model).__module__:  # 2026-06 gpt_oss: FlexAttention only
        positions = torch.arange(tokens.shape[1]).unsqueeze(0)
        return model(tokens, attention_masks=model.get_attention_masks(positions=positions))
    return model(tokens)


def _histc_any(histc):
    """torch.histc, which v0.2's router calls on int64 expert ids: CPU histc takes floats only
    (the counts are the same)."""
    return lambda input, *args, **kwargs: histc(input.float(), *args, **kwargs).to(input.dtype)


def _forward(model, vocab, flat_tokens):
    """Logits of the model on fixed token ids, float32 on CPU. torchtitan's 2026 MoE experts
    cast their inputs to bf16 for torch._grouped_mm (a GPU kernel choice); here the casts are
    made no-ops and the grouped product is computed in float32, so the reference is the
    model's float32 math and can be compared at float32 tolerances."""
    if any(p.dtype != torch.float32 for p in model.parameters()):
        # v0.2 gpt_oss builds its layers in bf16 (training runs them under mixed precision);
        # the forward runs on a float32 copy of the same (bf16-exact) values.
        import copy

        model = copy.deepcopy(model).float()
    tokens = torch.randint(0, vocab, (1, FORWARD_TOKENS), generator=torch.Generator().manual_seed(7))
    import faulthandler

    faulthandler.dump_traceback_later(60, exit=True)  # a forward of these models takes < 1 s
    _eager_attention()
    saved = torch._grouped_mm, torch.Tensor.bfloat16, torch.histc
    torch._grouped_mm, torch.Tensor.bfloat16 = _grouped_mm_f32, lambda self: self
    torch.histc = _histc_any(torch.histc)
    try:
        with torch.no_grad():
            model.eval()
            logits = _call(model, tokens, flat_tokens)
    finally:
        torch._grouped_mm, torch.Tensor.bfloat16, torch.histc = saved
        faulthandler.cancel_dump_traceback_later()
    if isinstance(logits, (tuple, list)):  # deepseek_v3 with MTP: main logits first
        logits = logits[0]
    if logits.dim() == 2:  # 2026-08: [T, V]
        logits = logits.unsqueeze(0)
    return tokens, logits.float().contiguous()


def _save_one(generation, name, index, out_dir, dcp_too):
    from safetensors.torch import save_file

    import torch.distributed.checkpoint as dcp

    model, adapter, ckconv, broken = _build(generation, name)
    seed = 1234 + index
    _seeded_state(model, seed, ckconv["family"])
    # clone: tied weights share storage, which save_file refuses.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    target = os.path.join(out_dir, name)
    os.makedirs(target, exist_ok=True)
    save_file(state, os.path.join(target, "native.safetensors"))
    if dcp_too:
        dcp.save(state, checkpoint_id=os.path.join(target, "native.dcp"), no_dist=True)
    hf = {}
    if broken is None:
        hf = {k: v.contiguous() for k, v in adapter().to_hf(dict(state)).items()}
        os.makedirs(os.path.join(target, "hf"), exist_ok=True)
        # As HF checkpoints are saved (save_pretrained, DCP's HF writer): format metadata.
        save_file(hf, os.path.join(target, "hf", "model.safetensors"), metadata={"format": "pt"})
    tokens, logits = _forward(model, ckconv["overrides"]["vocab_size"], generation == "2026-08")
    save_file({"input_ids": tokens, "logits": logits}, os.path.join(target, "logits.safetensors"))
    ckconv.setdefault("base_flavor", "debugmodel")
    ckconv.update({"name": name, "generation": generation, "seed": seed,
                   "torchtitan_commit": COMMITS[generation],
                   "hf_reference": "to_hf" if broken is None else "none: " + broken})
    with open(os.path.join(target, "flavor.json"), "w") as f:
        json.dump(ckconv, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{generation} {name}: {len(state)} native tensors, {len(hf)} HF tensors"
          + ("" if broken is None else " (adapter broken, HF not written)"))


def _make_v01(out_dir):
    import tt_models_v01

    for index, name in enumerate(tt_models_v01.models()):
        ckconv = tt_models_v01.save(name, index, out_dir, _seeded_state, _forward)
        ckconv.setdefault("base_flavor", "debugmodel")
        ckconv.update({"name": name, "generation": "v0.1", "torchtitan_commit": COMMITS["v0.1"]})
        with open(os.path.join(out_dir, name, "flavor.json"), "w") as f:
            json.dump(ckconv, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"v0.1 {name}: native, export.dcp, full.dcp")


def make(tree, generation, out_dir, only=None):
    if generation == "v0.1":
        return _make_v01(out_dir)
    for index, name in enumerate(_models(generation)):
        if only is None or name in only:
            _save_one(generation, name, index, out_dir, dcp_too=index == 0)


def load(tree, generation, name, checkpoint):
    from safetensors.torch import load_file

    loaded = load_file(checkpoint)
    if generation == "v0.1":
        import tt_models_v01

        model = tt_models_v01.models()[name]()[0]()
        # v0.1.0's model keeps its RoPE table `freqs_cis` as a persistent buffer, which its
        # model-only export (what from-hf writes) leaves out and the model recomputes: every
        # other key must match, both ways.
        result = model.load_state_dict(loaded, strict=False)
        if list(result.missing_keys) != ["freqs_cis"] or result.unexpected_keys:
            sys.exit(f"{name}: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
    else:
        model = _build(generation, name)[0]
        model.load_state_dict(loaded, strict=True)
    state = model.state_dict()
    bad = [k for k, v in loaded.items() if not torch.equal(state[k], v)]
    if bad:
        sys.exit(f"{name}: {len(bad)} tensors differ after load_state_dict: {bad[:5]}")
    how = "strict but for freqs_cis" if generation == "v0.1" else "strict=True"
    print(f"{generation} {name}: load_state_dict ({how}) of {len(loaded)} tensors, bit-equal")


def main():
    command, tree, generation = sys.argv[1:4]
    _import_torchtitan(tree, generation)
    if command == "make":
        make(tree, generation, sys.argv[4], sys.argv[5:] or None)
    elif command == "hf_v01":
        import tt_models_v01

        tt_models_v01.hf_v01(sys.argv[4], _forward)
    elif command == "load":
        load(tree, generation, sys.argv[4], sys.argv[5])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
