"""Interop checks of ckconv's DCP and torch.save support against the real PyTorch.

Usage (inside the reference chroot: scripts/refenv.sh run dcp_check.py COMMAND ...):
  load-dcp DIR EXPECTED       torch.distributed.checkpoint.load (no process group) of the DCP
                              directory DIR into a state dict shaped like EXPECTED (a safetensors
                              file), and dcp_to_torch_save of DIR; both must equal EXPECTED
                              bit for bit, with the same keys, dtypes and shapes.
  load-torch FILE EXPECTED    torch.load(FILE, weights_only=True), with and without mmap, must
                              equal EXPECTED bit for bit.
  write-model-multirank NATIVE.safetensors OUT
                              2 processes save a torchtitan-like training checkpoint of NATIVE's
                              tensors (sharded across ranks) plus optimizer, lr_scheduler,
                              dataloader and train_state items into the DCP directory OUT.
  write-multirank OUT         runs 2 processes on loopback gloo that save, with
                              torch.distributed.checkpoint.save, a state dict of DTensors sharded
                              across the ranks (rows, columns), a replicated transposed tensor,
                              optimizer-like DTensors and train_state / lr_scheduler values into
                              OUT/ck, and writes the full model tensors to OUT/expected.safetensors.
Exit 0 on success, 1 on a failed check, 2 on bad usage.
"""

import os
import socket
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file, save_file

from interop_common import CheckFailures, quiet_libraries, tensor_difference, usage_error


def compare_state_dicts(failures, what, actual, expected):
    if set(actual) != set(expected):
        failures.fail(f"{what}: keys differ: only loaded {sorted(set(actual) - set(expected))}, "
                      f"only expected {sorted(set(expected) - set(actual))}")
    for key in sorted(set(actual) & set(expected)):
        difference = tensor_difference(actual[key], expected[key])
        if difference is not None:
            failures.fail(f"{what}: {key}: {difference}")


def load_dcp(directory, expected_path):
    failures = CheckFailures("dcp_check load-dcp")
    expected = load_file(expected_path)
    # dcp.load fills the caller's tensors in place; start from garbage so nothing passes by luck.
    state_dict = {key: torch.full_like(value, 7) if value.is_floating_point() else
                  torch.zeros_like(value) for key, value in expected.items()}
    dcp.load(state_dict, checkpoint_id=directory)
    compare_state_dicts(failures, "dcp.load", state_dict, expected)

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    with tempfile.TemporaryDirectory() as scratch:
        converted = os.path.join(scratch, "converted.pt")
        dcp_to_torch_save(directory, converted)
        compare_state_dicts(failures, "dcp_to_torch_save", torch.load(converted, weights_only=True),
                            expected)
    if not failures.count:
        print(f"ok: dcp.load and dcp_to_torch_save of {directory}: {len(expected)} tensors bit-exact")
    return failures.exit_code()


def load_torch(path, expected_path):
    failures = CheckFailures("dcp_check load-torch")
    expected = load_file(expected_path)
    for mmap in (False, True):
        loaded = torch.load(path, weights_only=True, mmap=mmap)
        compare_state_dicts(failures, f"torch.load(mmap={mmap})", loaded, expected)
    if not failures.count:
        print(f"ok: torch.load(weights_only=True) of {path}: {len(expected)} tensors bit-exact")
    return failures.exit_code()


def full_tensors():
    """The model tensors of the multi-rank checkpoint, identical on every rank."""
    generator = torch.Generator().manual_seed(0)
    return {
        "tok_embeddings.weight": torch.randn(8, 6, generator=generator),
        "layers.0.attention.wq.weight": torch.randn(6, 4, generator=generator).to(torch.bfloat16),
        "layers.0.feed_forward.w2.weight": torch.randn(5, 3, generator=generator),
        "norm.weight": torch.randn(6, generator=generator),
    }


def multirank_worker(rank, world_size, port, out_dir):
    from torch.distributed.tensor import DTensor, Replicate, Shard, init_device_mesh

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), GLOO_SOCKET_IFNAME="lo",
                      USE_LIBUV="0")  # Debian builds torch without libuv
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    mesh = init_device_mesh("cpu", (world_size,))
    full = full_tensors()

    # Each rank wraps its own slice (no collective: gloo cannot scatter bfloat16).
    def sharded(tensor, dim):
        local = tensor.chunk(world_size, dim)[rank].clone()
        return DTensor.from_local(local, mesh, [Shard(dim)], run_check=False,
                                  shape=tensor.shape, stride=tensor.stride())

    state_dict = {
        # Row-sharded (FSDP-like) and column-sharded (TP-like) DTensors: chunks in both files.
        "tok_embeddings.weight": sharded(full["tok_embeddings.weight"], 0),
        "layers.0.attention.wq.weight": sharded(full["layers.0.attention.wq.weight"], 1),
        # A plain replicated tensor saved through a transposed view: stored with stride (1, 5).
        "layers.0.feed_forward.w2.weight": full["layers.0.feed_forward.w2.weight"].t().contiguous().t(),
        "norm.weight": DTensor.from_local(full["norm.weight"], mesh, [Replicate()],
                                          run_check=False),
        "optimizer": {
            "state": {"tok_embeddings.weight": {
                "exp_avg": sharded(torch.ones(8, 6), 0),
                "step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 0.001, "betas": (0.9, 0.95)}],
        },
        "lr_scheduler": {"last_epoch": 3},
        "train_state": {"step": 3, "ntokens_seen": 12345},
    }
    dcp.save(state_dict, checkpoint_id=os.path.join(out_dir, "ck"))
    dist.barrier()
    dist.destroy_process_group()


def model_multirank_worker(rank, world_size, port, native_path, out_dir):
    """Saves a torchtitan-like training checkpoint of the model in `native_path`: weights as
    DTensors sharded across ranks (rows for FSDP-like, columns for TP-like tensors), plus
    optimizer state, lr_scheduler, dataloader and train_state items."""
    from torch.distributed.tensor import DTensor, Replicate, Shard, init_device_mesh

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), GLOO_SOCKET_IFNAME="lo", USE_LIBUV="0")
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    mesh = init_device_mesh("cpu", (world_size,))

    def sharded(tensor, dim):
        local = tensor.chunk(world_size, dim)[rank].clone()
        return DTensor.from_local(local, mesh, [Shard(dim)], run_check=False,
                                  shape=tensor.shape, stride=tensor.stride())

    state_dict = {}
    optimizer_state = {}
    for index, (key, tensor) in enumerate(load_file(native_path).items()):
        if tensor.dim() >= 2 and tensor.shape[-1] >= world_size and index % 3 == 1:
            value = sharded(tensor, tensor.dim() - 1)
        elif tensor.dim() >= 1 and tensor.shape[0] >= world_size:
            value = sharded(tensor, 0)
        else:
            value = DTensor.from_local(tensor, mesh, [Replicate()], run_check=False)
        state_dict[key] = value
        optimizer_state[key] = {"exp_avg": value, "step": torch.tensor(7.0)}
    state_dict["optimizer"] = {"state": optimizer_state,
                               "param_groups": [{"lr": 3e-4, "betas": (0.9, 0.95)}]}
    state_dict["lr_scheduler"] = {"last_epoch": 7}
    state_dict["dataloader"] = {"rank": rank, "position": 1234}
    state_dict["train_state"] = {"step": 7, "ntokens_seen": 28672}
    dcp.save(state_dict, checkpoint_id=out_dir)
    dist.barrier()
    dist.destroy_process_group()


def write_model_multirank(native_path, out_dir):
    import torch.multiprocessing as mp

    world_size = 2
    mp.start_processes(model_multirank_worker, args=(world_size, free_port(), native_path, out_dir),
                       nprocs=world_size, join=True, start_method="fork")
    files = sorted(os.listdir(out_dir))
    if not any(name.startswith("__1_") for name in files):
        print(f"FAIL dcp_check write-model-multirank: rank 1 wrote no data file: {files}")
        return 1
    print(f"ok: wrote a {world_size}-rank training checkpoint of {native_path} to {out_dir}: {files}")
    return 0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_multirank(out_dir):
    import torch.multiprocessing as mp

    os.makedirs(out_dir, exist_ok=True)
    world_size = 2
    mp.start_processes(multirank_worker, args=(world_size, free_port(), out_dir), nprocs=world_size,
                       join=True, start_method="fork")
    save_file({key: value.contiguous() for key, value in full_tensors().items()},
              os.path.join(out_dir, "expected.safetensors"))
    files = sorted(os.listdir(os.path.join(out_dir, "ck")))
    if not any(name.startswith("__1_") for name in files):
        print(f"FAIL dcp_check write-multirank: rank 1 wrote no data file: {files}")
        return 1
    print(f"ok: wrote a {world_size}-rank DCP checkpoint to {out_dir}/ck: {files}")
    return 0


def main(argv):
    quiet_libraries()
    if len(argv) == 3 and argv[0] == "load-dcp":
        return load_dcp(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "load-torch":
        return load_torch(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "write-model-multirank":
        return write_model_multirank(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "write-multirank":
        return write_multirank(argv[1])
    return usage_error(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
