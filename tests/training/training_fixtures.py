#!/usr/bin/env python3
"""Writes the training-checkpoint fixtures (tests/fixtures/training/) with real PyTorch.

    training_fixtures.py MODELS_DIR OUT_DIR

MODELS_DIR holds `<name>/model.safetensors` native model weights (written by `ckconv init`, see
make_fixtures.sh). For each, this script saves with torch.distributed.checkpoint what
torchtitan's checkpoint manager saves (torchtitan/components/checkpoint.py at v0.2.2 and
43e52fd01, torchtitan/components/checkpointer/dcp.py at b5bcd76c6):

- a full training checkpoint: the model state dict flattened at the top level, then
  `optimizer` (AdamW after one step, flattened by get_optimizer_state_dict(
  flatten_optimizer_state_dict=True): `state.<fqn>.{exp_avg,exp_avg_sq,step}` and
  `param_groups.<fqn>.<option>`), `lr_scheduler` (LambdaLR state: the whole state dict up to
  v0.2.2, only `last_epoch` from 2026), `dataloader` (`dp_rank_0`: pickled bytes, `world_size`)
  and `train_state` (`step`, `ntokens_seen`);
- a `last_save_model_only` export: the model state dict alone, cast to export_dtype bfloat16
  (every floating tensor, as the managers do, so also the MoE `expert_bias`);
- the storage features ckconv refuses: a DCP whose items pass through the `stream.zstd`
  transform (FileSystemWriter(_extensions=[ZStandard()])) and one written with
  FileSystemWriter(serialization_format=SAFETENSORS); and the per-rank shards of
  HuggingFaceStorageWriter(save_distributed=True) before consolidation.
"""
import os
import pickle
import shutil
import sys
import types
import warnings

warnings.filterwarnings("ignore")


def install_zstandard_shim():
    """torch's ZStandard extension needs the `zstandard` or `pyzstd` module, which Debian sid
    does not package; Python 3.14's standard `compression.zstd` (libzstd) writes the same zstd
    frames, so a minimal `zstandard` look-alike backed by it is installed first."""
    from compression import zstd

    class _Writer:
        def __init__(self, output):
            self.output = output
            self.compressor = zstd.ZstdCompressor()

        def write(self, data):
            self.output.write(self.compressor.compress(bytes(data)))
            return len(memoryview(data))

        def flush(self):
            self.output.flush()

        def close(self):
            self.output.write(self.compressor.flush())
            self.output.close()

    class ZstdCompressor:
        def stream_writer(self, output):
            return _Writer(output)

    class ZstdDecompressor:
        def stream_reader(self, source):
            import io
            return io.BytesIO(zstd.decompress(source.read()))

    module = types.ModuleType("zstandard")
    module.ZstdCompressor = ZstdCompressor
    module.ZstdDecompressor = ZstdDecompressor
    sys.modules["zstandard"] = module


install_zstandard_shim()

import torch  # noqa: E402
import torch.distributed.checkpoint as dcp  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torch.distributed.checkpoint import FileSystemWriter, HuggingFaceStorageWriter  # noqa: E402
from torch.distributed.checkpoint._extension import ZStandard  # noqa: E402
from torch.distributed.checkpoint.filesystem import SerializationFormat  # noqa: E402
from torch.distributed.checkpoint.state_dict import (  # noqa: E402
    StateDictOptions,
    get_optimizer_state_dict,
)

MODELS, OUT = sys.argv[1], sys.argv[2]


def module_with(weights):
    """An nn.Module whose parameters are `weights` under their dotted names."""
    root = torch.nn.Module()
    for name, tensor in weights.items():
        owner = root
        *path, leaf = name.split(".")
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, torch.nn.Module())
            owner = getattr(owner, part)
        owner.register_parameter(leaf, torch.nn.Parameter(tensor.clone()))
    return root


def training_state(model, whole_lr_scheduler):
    optimizer = torch.optim.AdamW(model.parameters(), lr=8e-4, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 2))
    generator = torch.Generator().manual_seed(1)
    for parameter in model.parameters():
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 0.01
    optimizer.step()
    scheduler.step()
    optimizer_state = get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(flatten_optimizer_state_dict=True))
    lr_state = scheduler.state_dict() if whole_lr_scheduler else {"last_epoch": scheduler.last_epoch}
    return {
        "optimizer": optimizer_state,
        "lr_scheduler": lr_state,
        "dataloader": {"dp_rank_0": pickle.dumps({"sample_idx": 64, "epoch": 0}), "world_size": 1},
        "train_state": {"step": 1, "ntokens_seen": 512},
    }


def save(state, name, **writer):
    target = os.path.join(OUT, name)
    shutil.rmtree(target, ignore_errors=True)
    dcp.save(state, storage_writer=FileSystemWriter(target, **writer), no_dist=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in sorted(os.listdir(MODELS)):
        weights = load_file(os.path.join(MODELS, name, "model.safetensors"))
        if name.startswith("full_"):
            # torchtitan up to v0.2.2 saves LambdaLR.state_dict(); later only last_epoch.
            state = {**weights, **training_state(module_with(weights), name == "full_v0.2")}
            save(state, name)
        elif name.startswith("export_"):
            save({k: v.to(torch.bfloat16) if v.is_floating_point() else v
                  for k, v in weights.items()}, name)
        elif name == "features":
            save(dict(weights), "zstd", _extensions=[ZStandard()])
            save({**weights, "train_state": {"step": 1}}, "safetensors_serialization",
                 serialization_format=SerializationFormat.SAFETENSORS)
            target = os.path.join(OUT, "hf_unconsolidated")
            shutil.rmtree(target, ignore_errors=True)
            halves = {key: 1 + (index % 2) for index, key in enumerate(sorted(weights))}
            dcp.save(dict(weights), no_dist=True, storage_writer=HuggingFaceStorageWriter(
                target, fqn_to_index_mapping=halves, save_distributed=True))


main()
