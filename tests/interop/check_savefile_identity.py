"""Checks that safetensors files are byte-identical to what safetensors.torch.save_file writes for
the same tensors and metadata: ckconv promises files indistinguishable from the Python tools'.

Usage: check_savefile_identity.py [--expect-metadata JSON|none] FILE.safetensors [...]
  --expect-metadata  also require each file's __metadata__ to equal JSON (e.g. '{"format":"pt"}'),
                     or to be absent ("none"); without it any metadata is accepted and re-used.
Prints one line per failing file; exit 0 iff every file is identical, 1 otherwise, 2 on bad usage.
"""

import json
import os
import struct
import sys
import tempfile

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from interop_common import CheckFailures, usage_error


def describe_offset(data, offset):
    """Names the region of a safetensors file that holds byte `offset`, for the report."""
    if offset < 8:
        return "in the 8-byte header length"
    header_size = struct.unpack("<Q", data[:8])[0]
    if offset < 8 + header_size:
        return f"in the JSON header (bytes 8..{8 + header_size})"
    data_offset = offset - 8 - header_size
    try:
        header = json.loads(data[8:8 + header_size])
    except ValueError:
        return "in the data section"
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        if begin <= data_offset < end:
            return f"in the data of tensor {key!r} (byte {data_offset - begin} of {end - begin})"
    return "in the data section, outside every tensor (padding or trailing bytes)"


def first_differing_offset(a, b):
    """Offset of the first differing byte (the shorter length if one is a prefix of the other)."""
    block_size = 1 << 20
    common_length = min(len(a), len(b))
    for block_start in range(0, common_length, block_size):
        block_end = min(block_start + block_size, common_length)
        if a[block_start:block_end] != b[block_start:block_end]:
            return next(i for i in range(block_start, block_end) if a[i] != b[i])
    return common_length


def check_file(path, expected_metadata, failures):
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata()
        tensors = load_file(path)
    except Exception as error:  # the library's own verdict on a file it cannot read
        failures.fail(f"{path}: safetensors cannot read it: {type(error).__name__}: {error}")
        return
    if expected_metadata is not NO_EXPECTATION and metadata != expected_metadata:
        failures.fail(f"{path}: __metadata__ is {metadata!r}, expected {expected_metadata!r}")
    with open(path, "rb") as original_file:
        original = original_file.read()
    with tempfile.TemporaryDirectory(prefix="ckconv-savefile-") as scratch:
        resaved_path = os.path.join(scratch, "resaved.safetensors")
        save_file(tensors, resaved_path, metadata=metadata)
        with open(resaved_path, "rb") as resaved_file:
            resaved = resaved_file.read()
    if original == resaved:
        return
    first_difference = first_differing_offset(original, resaved)
    failures.fail(f"{path}: differs from save_file's output (metadata={metadata!r}) at byte "
                  f"{first_difference} {describe_offset(original, first_difference)}; "
                  f"sizes {len(original)} vs {len(resaved)} bytes")


NO_EXPECTATION = object()


def main(argv):
    expected_metadata = NO_EXPECTATION
    if argv[:1] == ["--expect-metadata"]:
        if len(argv) < 2:
            usage_error("--expect-metadata needs a JSON object or 'none'")
        expected_metadata = None if argv[1] == "none" else json.loads(argv[1])
        argv = argv[2:]
    if not argv:
        usage_error("check_savefile_identity.py [--expect-metadata JSON|none] FILE.safetensors [...]")
    failures = CheckFailures("check_savefile_identity")
    for path in argv:
        check_file(path, expected_metadata, failures)
    if not failures.count:
        print(f"OK check_savefile_identity: {len(argv)} file(s) byte-identical to save_file")
    return failures.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
