"""Compares two safetensors checkpoints tensor by tensor, bit for bit: same key set, same dtype and
shape, identical bytes. Used to check ckconv's output against a reference conversion.

Usage: compare_tensors.py A B [--exclude REGEX]...
  A, B       a .safetensors file, or a directory of them (with model.safetensors.index.json or not)
  --exclude  keys matching REGEX (Python re.search) may differ in value; they must still exist on
             both sides with the same dtype and shape. A REGEX that matches no key is an error,
             so a typo cannot silently widen or void the comparison.
Prints one line per difference; exit 0 iff identical, 1 otherwise, 2 on bad usage.
"""

import argparse
import re
import sys

from interop_common import CheckFailures, Checkpoint, tensor_difference


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--exclude", action="append", default=[], metavar="REGEX")
    return parser.parse_args(argv)


def main(argv):
    arguments = parse_arguments(argv)
    failures = CheckFailures("compare_tensors")
    try:
        excludes = [re.compile(pattern) for pattern in arguments.exclude]
    except re.error as error:
        print(f"usage error: bad --exclude regex: {error}", file=sys.stderr)
        return 2
    try:
        a, b = Checkpoint(arguments.a), Checkpoint(arguments.b)
    except Exception as error:  # unreadable or inconsistent checkpoint: a failure, not a crash
        failures.fail(f"cannot read checkpoint: {type(error).__name__}: {error}")
        return failures.exit_code()

    a_keys, b_keys = set(a.keys()), set(b.keys())
    for key in sorted(a_keys - b_keys):
        failures.fail(f"{key}: only in A ({arguments.a})")
    for key in sorted(b_keys - a_keys):
        failures.fail(f"{key}: only in B ({arguments.b})")

    for pattern in excludes:
        if not any(pattern.search(key) for key in a_keys | b_keys):
            failures.fail(f"--exclude {pattern.pattern!r} matches no key")

    compared = excluded = 0
    for key in sorted(a_keys & b_keys):
        tensor_a, tensor_b = a.tensor(key), b.tensor(key)
        if any(pattern.search(key) for pattern in excludes):
            excluded += 1
            if tensor_a.dtype != tensor_b.dtype or tuple(tensor_a.shape) != tuple(tensor_b.shape):
                failures.fail(f"{key} (excluded from value check): {tensor_a.dtype}"
                              f"{tuple(tensor_a.shape)} != {tensor_b.dtype}{tuple(tensor_b.shape)}")
            continue
        compared += 1
        difference = tensor_difference(tensor_a, tensor_b)
        if difference is not None:
            failures.fail(f"{key}: {difference}")

    if not failures.count:
        print(f"OK compare_tensors: {compared} tensors bit-identical"
              f"{f', {excluded} excluded from the value check' if excluded else ''}")
    return failures.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
