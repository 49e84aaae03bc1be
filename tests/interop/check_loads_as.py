"""Checks that transformers loads two HF checkpoint directories to the same weights.

Usage: check_loads_as.py HF_DIR SAME_AS_DIR   (fully offline)

AutoModelForCausalLM.from_pretrained of each (float32) must give the same state dict keys and
bit-identical tensors; exit 1 naming the first difference, 2 on bad usage. For a directory
caught in the middle of a publish (tests/interop/publish_interop.sh): transformers must read
exactly the old checkpoint, or exactly the new one, through whatever entry point it finds.
"""

import sys

import torch
from transformers import AutoModelForCausalLM

from interop_common import quiet_libraries


def weights(directory):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    return model.state_dict()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    quiet_libraries()
    loaded, expected = weights(argv[0]), weights(argv[1])
    if sorted(loaded) != sorted(expected):
        print(f"FAIL check_loads_as: {argv[0]} and {argv[1]} load different keys")
        return 1
    for key, tensor in expected.items():
        if not torch.equal(loaded[key], tensor):
            print(f"FAIL check_loads_as: {argv[0]}: {key} differs from {argv[1]}")
            return 1
    print(f"OK check_loads_as: {argv[0]} loads as {argv[1]} ({len(expected)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
