"""Shared helpers of the interop checkers: open a safetensors checkpoint (one file, or a directory
with or without model.safetensors.index.json) and compare tensors bit for bit.

Runs inside the reference chroot (scripts/refenv.sh run ...), with Debian sid's torch/safetensors.
"""

import json
import os
import sys

import torch
from safetensors import safe_open

INDEX_NAME = "model.safetensors.index.json"


class CheckFailures:
    """Collects failures, printing each as one line as soon as it is found.

    Every checker ends with `sys.exit(failures.exit_code())`, so a failure can never be lost.
    """

    def __init__(self, checker_name):
        self.checker_name = checker_name
        self.count = 0

    def fail(self, message):
        self.count += 1
        print(f"FAIL {self.checker_name}: {message}", flush=True)

    def exit_code(self):
        return 1 if self.count else 0


class Checkpoint:
    """Key -> file map of a safetensors checkpoint, read lazily through safe_open.

    `path` is a .safetensors file or a directory. A directory with an index must agree with its
    shards exactly (every indexed key in its shard, every shard key indexed, no key twice); a
    directory without an index is the union of its *.safetensors files (no key twice).
    Raises ValueError with the reason when the checkpoint is inconsistent.
    """

    def __init__(self, path):
        self.path = path
        self.file_of_key = {}
        self._handles = {}
        if os.path.isfile(path):
            self._add_file(path)
        elif os.path.isdir(path):
            index_path = os.path.join(path, INDEX_NAME)
            if os.path.exists(index_path):
                self._add_indexed_directory(index_path)
            else:
                names = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
                if not names:
                    raise ValueError(f"{path}: no *.safetensors file and no {INDEX_NAME}")
                for name in names:
                    self._add_file(os.path.join(path, name))
        else:
            raise ValueError(f"{path}: no such file or directory")

    def _open(self, file_path):
        if file_path not in self._handles:
            self._handles[file_path] = safe_open(file_path, framework="pt")
        return self._handles[file_path]

    def _add_file(self, file_path):
        for key in self._open(file_path).keys():
            if key in self.file_of_key:
                raise ValueError(f"{self.path}: key {key!r} is in both "
                                 f"{self.file_of_key[key]} and {file_path}")
            self.file_of_key[key] = file_path

    def _add_indexed_directory(self, index_path):
        with open(index_path) as index_file:
            weight_map = json.load(index_file).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index_path}: missing or empty weight_map")
        for shard_name in sorted(set(weight_map.values())):
            shard_path = os.path.join(os.path.dirname(index_path), shard_name)
            if not os.path.isfile(shard_path):
                raise ValueError(f"{index_path}: shard {shard_name} does not exist")
            self._add_file(shard_path)
        for key, shard_name in weight_map.items():
            actual = self.file_of_key.get(key)
            if actual is None:
                raise ValueError(f"{index_path}: key {key!r} indexed in {shard_name} is in no shard")
            if os.path.basename(actual) != shard_name:
                raise ValueError(f"{index_path}: key {key!r} indexed in {shard_name} "
                                 f"but stored in {os.path.basename(actual)}")
        unindexed = sorted(set(self.file_of_key) - set(weight_map))
        if unindexed:
            raise ValueError(f"{index_path}: shard keys missing from weight_map: {unindexed[:5]}"
                             f"{' ...' if len(unindexed) > 5 else ''}")

    def keys(self):
        return sorted(self.file_of_key)

    def tensor(self, key):
        return self._open(self.file_of_key[key]).get_tensor(key)


def raw_bytes(tensor):
    """The tensor's bytes as a flat uint8 tensor (bit patterns, so -0.0 != 0.0 and NaN == NaN)."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def max_abs_difference(a, b):
    """max|a-b| as a float for the report, or None when the dtypes have no such notion."""
    try:
        return (a.detach().to(torch.float64) - b.detach().to(torch.float64)).abs().max().item()
    except (RuntimeError, TypeError):
        return None


def tensor_difference(a, b):
    """None if a and b are bit-identical with the same dtype and shape, else a short description."""
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if tuple(a.shape) != tuple(b.shape):
        return f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    a_bytes, b_bytes = raw_bytes(a), raw_bytes(b)
    if torch.equal(a_bytes, b_bytes):
        return None
    differing_elements = (a_bytes.reshape(a.numel(), -1) != b_bytes.reshape(b.numel(), -1)).any(dim=1)
    count = int(differing_elements.sum())
    first = int(differing_elements.nonzero()[0, 0])
    delta = max_abs_difference(a, b)
    delta_text = f", max|delta| {delta:.6g}" if delta is not None else ""
    return f"values differ in {count}/{a.numel()} elements (first at flat index {first}){delta_text}"


def quiet_libraries():
    """Keeps the checkers' stdout to their own verdict lines."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass


def usage_error(message):
    print(f"usage error: {message}", file=sys.stderr)
    sys.exit(2)
