"""torchtitan's own Python path from a native DCP checkpoint to HF safetensors, timed: what
ckconv to-hf replaces. Runs in the reference environment (scripts/refenv.sh run); TREE is a
torchtitan source tree exported from a git clone at a pinned commit by scripts/bench.sh, with
tests/generations/torchtitan_fixtures.py copied next to it (its stubs for the modules only
training needs).

  torchtitan_to_hf.py TREE GENERATION DCP_DIR OUT_DIR FLAVOR N_LAYERS   (llama3 only)

Steps, each timed on stderr: torch.distributed.checkpoint.load of DCP_DIR into tensors
allocated from its metadata (as torchtitan's checkpoint conversion script does, without a
process group), the llama3 StateDictAdapter's to_hf, then safetensors.torch.save_file of the
result as OUT_DIR/model.safetensors (with the "format": "pt" metadata HF writers add).
"""

import os
import sys
import time

import torch
import torch.distributed  # noqa: F401  (before torchtitan_fixtures installs its stubs)


def llama3_adapter(flavor, n_layers):
    """The llama3 StateDictAdapter over torchtitan's own config of FLAVOR, cut to N_LAYERS
    layers (the adapter reads the attention sizes of layer 0, dim and weight tying)."""
    import dataclasses

    from torchtitan.models import llama3

    config = llama3.llama3_configs[flavor](attn_backend="flex")
    config = dataclasses.replace(config, layers=config.layers[:n_layers])
    return llama3.Llama3StateDictAdapter(config, None)


def main():
    tree, generation, dcp_dir, out_dir, flavor, n_layers = sys.argv[1:7]
    sys.path.insert(0, tree)
    import torchtitan_fixtures

    torchtitan_fixtures._import_torchtitan(tree, generation)
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    adapter = llama3_adapter(flavor, int(n_layers))
    start = time.monotonic()
    metadata = dcp.FileSystemReader(dcp_dir).read_metadata()
    state = {key: torch.empty(item.size, dtype=item.properties.dtype)
             for key, item in metadata.state_dict_metadata.items()
             if isinstance(item, TensorStorageMetadata)}
    dcp.load(state, checkpoint_id=dcp_dir, no_dist=True)
    loaded = time.monotonic()
    hf = {key: value.contiguous() for key, value in adapter.to_hf(state).items()}
    converted = time.monotonic()
    os.makedirs(out_dir, exist_ok=True)
    save_file(hf, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    saved = time.monotonic()
    print(f"torchtitan_to_hf: dcp.load {loaded - start:.2f} s, to_hf {converted - loaded:.2f} s, "
          f"save_file {saved - converted:.2f} s ({len(state)} tensors in, {len(hf)} out)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
