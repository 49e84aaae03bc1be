#!/usr/bin/env python3
"""Generates the bad-input corpus that tests/cli/bad_inputs.sh runs the real binary on.

    make_corpus.py FIXTURES_DIR OUT_DIR

Every case is a damaged or hostile copy of a real fixture (tests/fixtures; treated as read-only, so
everything is copied first) written under OUT_DIR, plus one line of OUT_DIR/cases.tsv:

    name <TAB> exit code <TAB> message fragment <TAB> file the message must name <TAB> argv...

where argv follows `ckconv`, `@GQA` stands for the llama3_tiny_gqa flavor arguments and `-`
for an empty fragment or name (bash's read collapses empty tab-separated fields).
Plain Python 3 (no torch): pickles are decoded into inert stand-ins and re-pickled, so a
.metadata or data.pkl can be edited structurally (an offset, a stride, a relative_path).
"""
import copyreg
import io
import json
import os
import pickle
import shutil
import struct
import sys
import types
import warnings
import zipfile

warnings.filterwarnings("ignore", "Duplicate name")  # the duplicate_entry case is on purpose

FIXTURES, OUT = sys.argv[1], sys.argv[2]
FORMATS = os.path.join(FIXTURES, "formats", "torch2.14_py3.14")
GQA = os.path.join(FIXTURES, "adapters", "llama3_tiny_gqa")
cases = []


def case(name, code, fragment, names, *argv):
    assert "\t" not in fragment and name not in {c[0] for c in cases}, name
    cases.append((name, str(code), fragment or "-", names or "-") + argv)


def path(*parts):
    full = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def write(relative, data):
    full = path(relative)
    with open(full, "wb") as out:
        out.write(data)
    return full


def read(full):
    with open(full, "rb") as source:
        return source.read()


def copy_tree(source, relative):
    target = path(relative)
    shutil.copytree(source, target)
    for root, dirs, files in os.walk(target):
        for entry in dirs + files:
            os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
    os.chmod(target, 0o755)
    return target


# --- pickles as inert, editable values ----------------------------------------------------
class Stub:
    """An instance of a class or a call result from a pickle, kept as data."""

    def __new__(cls, *args):
        self = object.__new__(cls)
        self.args, self.kind, self.state = args, "newobj", None
        return self

    def __init__(self, *args):
        self.kind = "reduce"

    def __setstate__(self, state):
        self.state = state

    def __reduce_ex__(self, protocol):
        if self.kind == "reduce":
            return (type(self), self.args, self.state)
        return (copyreg.__newobj__, (type(self),) + self.args, self.state)


class PersistentId:
    def __init__(self, pid):
        self.pid = pid


_stubs = {}


def stub_class(module, name):
    """A class registered as module.name in a fake module, so pickle writes GLOBAL module name."""
    if (module, name) not in _stubs:
        cls = type(name, (Stub,), {"__module__": module, "__qualname__": name})
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(sys.modules[module], name, cls)
        _stubs[module, name] = cls
    return _stubs[module, name]


class InertUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return super().find_class(module, name)
        return stub_class(module, name)

    def persistent_load(self, pid):
        return PersistentId(pid)


class InertPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, PersistentId) else None


def unpickle(data):
    return InertUnpickler(io.BytesIO(data)).load()


def repickle(value):
    out = io.BytesIO()
    InertPickler(out, protocol=2).dump(value)
    return out.getvalue()


def is_stub(value, name):
    return isinstance(value, Stub) and type(value).__name__ == name


def size_tuple(value):  # torch.Size((...)) or a tuple
    return value.args[0] if is_stub(value, "Size") else value


def make_size(dims):
    return stub_class("torch", "Size")(tuple(dims))


# --- zips (torch.save archives) -------------------------------------------------------------
def zip_entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def make_zip(entries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def edit_data_pkl(zip_bytes, edit):
    """Applies edit(root) -> new root (or raw bytes) to the archive's data.pkl."""
    entries = []
    for name, data in zip_entries(zip_bytes):
        if name.endswith("/data.pkl"):
            result = edit(unpickle(data))
            data = result if isinstance(result, bytes) else repickle(result)
        entries.append((name, data))
    return make_zip(entries)


# --- DCP checkpoints ------------------------------------------------------------------------
class Dcp:
    """A DCP directory read into editable parts: the .metadata tree and the item bytes."""

    def __init__(self, directory):
        self.metadata = unpickle(read(os.path.join(directory, ".metadata")))
        self.items = []  # [MetadataIndex, _StorageInfo, bytes]
        files = {}
        for index, info in self.metadata.state["storage_data"].items():
            state = info.state
            name = state["relative_path"]
            files.setdefault(name, read(os.path.join(directory, name)))
            self.items.append([index, info, files[name][state["offset"]:state["offset"] + state["length"]]])

    def tensor(self, fqn):
        return self.metadata.state["state_dict_metadata"][fqn]

    def item(self, fqn):
        return next(item for item in self.items if item[0].state["fqn"] == fqn)

    def write(self, relative, edit_bytes=None):
        """Writes the checkpoint as one __0_0.distcp; edit_bytes(file bytes) may damage it."""
        directory = path(relative, "x")[:-2]
        data = b""
        storage_data = {}
        for index, info, item in self.items:
            info.state["offset"], info.state["length"] = len(data), len(item)
            data += item
            storage_data[index] = info
        self.metadata.state["storage_data"] = storage_data
        write(os.path.join(relative, ".metadata"), repickle(self.metadata))
        write(os.path.join(relative, "__0_0.distcp"), edit_bytes(data) if edit_bytes else data)
        return directory


def gqa_dcp():
    return Dcp(os.path.join(GQA, "native_dcp"))


def edit_item_tensor(dcp, fqn, edit):
    """Edits the _rebuild_tensor call of fqn's item: edit(args list) -> args list."""

    def on_root(root):
        root.args = tuple(edit(list(root.args)))
        return root

    item = dcp.item(fqn)
    item[2] = edit_data_pkl(item[2], on_root)


# --- safetensors --------------------------------------------------------------------------
def st_file(header, data=b"", pad=True):
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def st_parse(data):
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    return header, data[8 + length:]


def st_rebuild(tensors):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file with cumulative offsets."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return st_file(header, data)


def st_tensors(data):
    header, body = st_parse(data)
    return [(name, t["dtype"], t["shape"], body[t["data_offsets"][0]:t["data_offsets"][1]])
            for name, t in header.items() if name != "__metadata__"]


def one(dtype="F32", shape=(2,), offsets=(0, 8), **extra):
    entry = {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}
    entry.update(extra)
    return entry


def safetensors_cases():
    a = read(os.path.join(FORMATS, "a.safetensors"))
    (n,) = struct.unpack("<Q", a[:8])
    st = lambda name, data: write(f"st/{name}.safetensors", data)
    inspect = lambda name, code, fragment, data: case(
        f"st.{name}", code, fragment, f"{name}.safetensors", "inspect", st(name, data))
    inspect("empty", 3, "too short for the 8-byte header length", b"")
    inspect("truncated_length", 3, "too short for the 8-byte header length", a[:5])
    inspect("truncated_header", 3, "bytes follow the length (truncated", a[:8 + n // 2])
    inspect("truncated_data", 3, "(truncated)", a[:-3])
    inspect("length_only", 3, "bytes follow the length (truncated", a[:8])
    inspect("length_beyond_file", 3, "bytes follow the length", struct.pack("<Q", 4096) + a[8:])
    inspect("length_above_cap", 3, "above the limit of 100000000", struct.pack("<Q", 1 << 40) + a[8:])
    inspect("length_max_u64", 3, "above the limit", b"\xff" * 8 + a[8:])
    inspect("not_utf8", 3, "not valid UTF-8", st_file(b'{"\xff\xfe":' + json.dumps(one()).encode() + b"}", bytes(8)))
    inspect("overlong_utf8", 3, "not valid UTF-8", st_file(b'{"\xc0\xaf":' + json.dumps(one()).encode() + b"}", bytes(8)))
    inspect("invalid_json", 3, "header is not valid JSON", st_file(b'{"a":{"dtype":"F32",', bytes(8)))
    inspect("nul_in_header", 3, "NUL byte", st_file(b'{"a\x00b":' + json.dumps(one()).encode() + b"}", bytes(8)))
    inspect("json_array", 3, "header must be a JSON object", st_file(b"[1,2,3]"))
    inspect("json_empty", 3, "header is not valid JSON", st_file(b"        ", pad=False))
    inspect("duplicate_key", 3, "has the key 'a' twice", st_file(
        b'{"a":' + json.dumps(one()).encode() + b',"a":' + json.dumps(one(offsets=(8, 16))).encode() + b"}", bytes(16)))
    inspect("duplicate_metadata", 3, "'__metadata__' twice", st_file(b'{"__metadata__":{},"__metadata__":{}}'))
    inspect("duplicate_field", 3, "has the key 'dtype' twice",
            st_file(b'{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', bytes(8)))
    inspect("metadata_not_string", 3, "must be a string", st_file({"__metadata__": {"format": 1}}))
    inspect("entry_not_object", 3, "expected an object with dtype, shape and data_offsets", st_file({"a": [1, 2]}))
    inspect("missing_dtype", 3, 'missing field "dtype"', st_file({"a": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8)))
    inspect("unknown_dtype", 3, "unknown dtype 'F33'", st_file({"a": one("F33")}, bytes(8)))
    inspect("lowercase_dtype", 3, "unknown dtype 'f32'", st_file({"a": one("f32")}, bytes(8)))
    inspect("negative_dim", 3, "shape must hold non-negative integers, found number -2", st_file({"a": one(shape=(-2,))}, bytes(8)))
    inspect("float_dim", 3, "shape must hold non-negative integers, found number 2.0", st_file({"a": one(shape=(2.0,))}, bytes(8)))
    inspect("huge_dims", 3, "is too large", st_file({"a": one(shape=(1 << 40, 1 << 40))}, bytes(8)))
    inspect("dim_beyond_u64", 3, "shape must hold non-negative integers",
            st_file(b'{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}', bytes(8)))
    inspect("rank_above_limit", 3, "shape has 65 dimensions, more than the limit of 64", st_file({"a": one(shape=[1] * 65 + [2])}, bytes(8)))
    inspect("negative_offset", 3, "data_offsets must be [begin, end] with non-negative integers",
            st_file({"a": one(offsets=(-8, 0))}, bytes(8)))
    inspect("offset_beyond_u64", 3, "data_offsets must be [begin, end]",
            st_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551624]}}', bytes(8)))
    inspect("three_offsets", 3, "data_offsets must be [begin, end]", st_file({"a": one(offsets=(0, 8, 16))}, bytes(8)))
    inspect("end_before_begin", 3, "end before they begin", st_file({"a": one(offsets=(8, 0))}, bytes(8)))
    inspect("size_mismatch", 3, "needs 8 bytes, but data_offsets [0, 12] span 12", st_file({"a": one(offsets=(0, 12))}, bytes(12)))
    inspect("odd_f4", 3, "not a whole number of bytes", st_file({"a": one("F4", shape=(3,), offsets=(0, 1))}, bytes(1)))
    inspect("overlap", 3, "overlap tensor 'a'",
            st_file({"a": one(offsets=(0, 8)), "b": one(offsets=(4, 12))}, bytes(12)))
    inspect("hole", 3, "leave a hole of 4 bytes after tensor 'a'",
            st_file({"a": one(offsets=(0, 8)), "b": one(offsets=(12, 20))}, bytes(20)))
    inspect("first_not_at_zero", 3, "the first tensor must start at offset 0", st_file({"a": one(offsets=(8, 16))}, bytes(16)))
    inspect("trailing_bytes", 3, "5 trailing bytes after the last tensor", a + b"extra")
    inspect("offsets_overflow_size", 3, "data bytes after the header, but the file has",
            st_file({"a": one(shape=(1 << 20,), offsets=(0, 4 << 20))}, bytes(8)))
    inspect("deep_json", 3, "nests JSON deeper than 64 levels",
            st_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":' + b"[" * 100 + b"]" * 100 + b"}}", bytes(8)))
    inspect("hostile_name", 3, "tensor 'evil\\x1b[2J': unknown dtype", st_file({"evil\x1b[2J": one("Q")}, bytes(8)))
    # Not a safetensors file at all (detected as one since it is no zip): a text file.
    # Named for what it is (a text file), not reported as a corrupt header length.
    inspect("text_file", 3, "is a text file (text_file.safetensors), not a checkpoint", b"this is not a checkpoint, just some text\n")


def index_cases():
    hub = os.path.join(FORMATS, "hubout")
    index = json.loads(read(os.path.join(hub, "model.safetensors.index.json")))
    shards = sorted(set(index["weight_map"].values()))

    def sharded(name, edit_index=None, edit_files=None, raw_index=None):
        directory = copy_tree(hub, f"index/{name}")
        document = json.loads(json.dumps(index))
        if edit_index:
            edit_index(document)
        text = raw_index if raw_index is not None else json.dumps(document, indent=2).encode()
        write(f"index/{name}/model.safetensors.index.json", text)
        if edit_files:
            edit_files(directory)
        return directory

    def inspect(name, code, fragment, names="model.safetensors.index.json", **kwargs):
        case(f"index.{name}", code, fragment, names, "inspect", sharded(name, **kwargs))

    first = sorted(index["weight_map"])[0]
    inspect("missing_shard", 3, "shard 'model-00009-of-00009.safetensors'",
            edit_index=lambda d: d["weight_map"].__setitem__(first, "model-00009-of-00009.safetensors"))
    inspect("shard_lacks_tensor", 3, "lists tensor 'ghost.weight' in",
            edit_index=lambda d: d["weight_map"].__setitem__("ghost.weight", shards[0]))

    def duplicate_shard(directory):  # the second shard also holds the first shard's tensors
        shutil.copy(os.path.join(directory, shards[0]), os.path.join(directory, shards[1]))
    inspect("tensor_in_two_shards", 3, "(a tensor may live in one shard only)", names=shards[1], edit_files=duplicate_shard)
    def unlist_a(document):  # shard 2 holds a and b; the index forgets a (and the total)
        document["weight_map"].pop("a")
        document["metadata"].pop("total_size")
    inspect("tensor_not_listed", 3, "holds tensor 'a', which", names=shards[1], edit_index=unlist_a)
    # A shard the index does not mention at all is not read; total_size still catches it.
    inspect("shard_not_indexed", 3, "metadata.total_size is 560 but the shards' tensors hold 160",
            edit_index=lambda d: d["weight_map"].pop("big"))
    inspect("dotdot_path", 3, "expected a plain *.safetensors file name",
            edit_index=lambda d: d["weight_map"].__setitem__(first, "../" + shards[0]))
    inspect("absolute_path", 3, "names file '/etc/passwd.safetensors'",
            edit_index=lambda d: d["weight_map"].__setitem__(first, "/etc/passwd.safetensors"))
    inspect("subdirectory_path", 3, "(no '/', '..' or absolute path)",
            edit_index=lambda d: d["weight_map"].__setitem__(first, "sub/" + shards[0]))
    inspect("not_a_string", 3, "must name a file as a string, found number 3",
            edit_index=lambda d: d["weight_map"].__setitem__(first, 3))
    inspect("no_weight_map", 3, 'missing "weight_map"', edit_index=lambda d: d.pop("weight_map"))
    inspect("invalid_json", 3, "is not valid JSON", raw_index=b'{"weight_map": {')
    inspect("duplicate_key", 3, "twice; duplicate keys are not allowed",
            raw_index=b'{"weight_map": {"a": "%s", "a": "%s"}}' % (shards[0].encode(), shards[1].encode()))
    inspect("total_size_mismatch", 3, "metadata.total_size is 1",
            edit_index=lambda d: d["metadata"].__setitem__("total_size", 1))
    inspect("negative_total_size", 3, "metadata.total_size must be a non-negative integer",
            edit_index=lambda d: d["metadata"].__setitem__("total_size", -5))
    # Several shards and no index: which tensors live where is unknown.
    directory = copy_tree(hub, "index/no_index")
    os.remove(os.path.join(directory, "model.safetensors.index.json"))
    case("index.no_index", 3, "but no model.safetensors.index.json", "no_index", "inspect", directory)


# Hand-written hostile pickles (CPython Lib/pickle.py opcodes).
def global_call(module, name, argument=b"id"):
    return (b"\x80\x02c" + module + b"\n" + name + b"\nX" + struct.pack("<I", len(argument)) + argument + b"\x85R.")


HOSTILE_PICKLES = {
    "os_system": (global_call(b"os", b"system"), "refusing global os.system"),
    "builtins_eval": (global_call(b"builtins", b"eval", b"__import__('os').system('id')"), "refusing global builtins.eval"),
    "subprocess_popen": (global_call(b"subprocess", b"Popen"), "refusing global subprocess.Popen"),
    "posix_system_stack_global": (b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.", "refusing global posix.system"),
    "torch_load_global": (global_call(b"torch", b"load"), "refusing global torch.load"),
    "deep_marks": (b"\x80\x02" + b"(" * 100000, "MARKs nest deeper than the limit of 4096"),
    "huge_memo_index": (b"\x80\x02j\xff\xff\xff\xff.", "memo index 4294967295 was never stored"),
    "enormous_unicode8": (b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"abc", "exceeds the limit of 1073741824"),
    "long_binunicode_truncated": (b"\x80\x02X\xff\xff\xff\x3f" + b"x" * 10, "truncated: needs 1073741823 more bytes"),
    "enormous_long4": (b"\x80\x02\x8b\xff\xff\xff\x7f" + b"\x01" * 8, "exceeds the limit of 1073741824"),
    "stack_bomb": (b"\x80\x02N" + b"2" * (1 << 22) + b".", "stack exceeds the limit of 4194304 values"),
    "protocol0_opcode": (b"\x80\x02I1\n.", "unsupported pickle opcode 0x49"),
    "trailing_after_stop": (b"\x80\x02N.garbage", "7 unexpected bytes after STOP"),
    "stack_underflow": (b"\x80\x02R.", "stack underflow"),
    "truncated_no_stop": (b"\x80\x02}q\x00(X\x01\x00\x00\x00a", "truncated"),
}


def dcp_cases():
    native = os.path.join(GQA, "native_dcp")

    def run(name, code, fragment, directory, names=None):
        case(f"dcp.{name}", code, fragment, names or os.path.basename(directory), "to-hf", "@GQA",
             "-i", directory, "-o", path(f"out/dcp.{name}"))

    # .metadata replaced by a hostile or broken pickle; the real .distcp stays beside it.
    metadata = read(os.path.join(native, ".metadata"))
    for name, (data, fragment) in HOSTILE_PICKLES.items():
        directory = copy_tree(native, f"dcp/metadata_{name}")
        write(f"dcp/metadata_{name}/.metadata", data)
        run(f"metadata_{name}", 3, fragment, directory, ".metadata")
    for name, data, fragment in [
        ("empty", b"", "truncated: needs 1 more bytes"),
        ("truncated", metadata[: len(metadata) // 2], "truncated"),
        ("corrupt", metadata[:40] + bytes(b ^ 0x5A for b in metadata[40:80]) + metadata[80:], "pickle byte"),
        ("not_metadata", repickle({"a": 1}), "expected a Metadata, found dict of 1"),
    ]:
        directory = copy_tree(native, f"dcp/metadata_{name}")
        write(f"dcp/metadata_{name}/.metadata", data)
        run(f"metadata_{name}", 3, fragment, directory, ".metadata")
    directory = copy_tree(native, "dcp/no_metadata")
    os.remove(os.path.join(directory, ".metadata"))
    run("no_metadata", 3, "no DCP checkpoint (.metadata)", directory)

    # Structural edits, each on a fresh copy of the real checkpoint.
    def edited(name, code, fragment, edit, names=None, edit_bytes=None):
        dcp = gqa_dcp()
        edit(dcp)
        run(name, code, fragment, dcp.write(f"dcp/{name}", edit_bytes), names)

    def set_path(value):
        def edit(dcp):
            dcp.item("norm.weight")[1].state["relative_path"] = value
        return edit

    edited("relative_path_dotdot", 3, "relative_path '../outside.distcp' leaves the checkpoint directory", set_path("../outside.distcp"), ".metadata")
    edited("relative_path_absolute", 3, "relative_path '/etc/passwd' leaves the checkpoint directory (absolute path)", set_path("/etc/passwd"), ".metadata")
    edited("relative_path_nested_dotdot", 3, "'..' component", set_path("sub/../../x.distcp"), ".metadata")
    edited("relative_path_directory", 3, "data file '.' named by .metadata is not a regular file", set_path("."))
    edited("relative_path_missing", 3, "missing data file '__1_0.distcp' named by .metadata", set_path("__1_0.distcp"))
    # A data file that is a symlink pointing outside the directory.
    dcp = gqa_dcp()
    directory = dcp.write("dcp/symlink_outside")
    os.rename(os.path.join(directory, "__0_0.distcp"), path("dcp/outside.distcp"))
    os.symlink(os.path.abspath(path("dcp/outside.distcp")), os.path.join(directory, "__0_0.distcp"))
    run("symlink_outside", 3, "a symbolic link points outside", directory, ".metadata")
    directory = copy_tree(native, "dcp/missing_distcp")
    os.remove(os.path.join(directory, "__0_0.distcp"))
    run("missing_distcp", 3, "missing data file '__0_0.distcp'", directory)

    def set_location(offset=None, length=None):
        def edit(dcp):
            state = dcp.item("norm.weight")[1].state
            original = dcp.write
            def write_then_patch(relative, edit_bytes=None):  # offsets are recomputed on write
                directory = original(relative, edit_bytes)
                meta = unpickle(read(os.path.join(directory, ".metadata")))
                for index, info in meta.state["storage_data"].items():
                    if index.state["fqn"] == "norm.weight":
                        if offset is not None:
                            info.state["offset"] = offset
                        if length is not None:
                            info.state["length"] = info.state["length"] + length
                write(os.path.join(relative, ".metadata"), repickle(meta))
                return directory
            dcp.write = write_then_patch
        return edit

    edited("item_beyond_file", 3, "lies beyond the end of the file", set_location(offset=10 ** 9), "__0_0.distcp")
    edited("item_cut_short", 3, "not a valid torch.save zip archive", set_location(length=-100), "__0_0.distcp")
    edited("truncated_distcp", 3, "lies beyond the end of the file", lambda dcp: None, "__0_0.distcp",
           edit_bytes=lambda data: data[: len(data) // 2])

    # Chunks: norm.weight is [64] in one chunk; change what .metadata claims.
    def chunks(size, chunk_list):
        def edit(dcp):
            tensor = dcp.tensor("norm.weight")
            tensor.state["size"] = make_size(size)
            template = tensor.state["chunks"][0]
            new_chunks = []
            for offsets, sizes in chunk_list:
                chunk = stub_class(type(template).__module__, type(template).__name__)()
                chunk.kind, chunk.args = template.kind, template.args
                chunk.state = {"offsets": make_size(offsets), "sizes": make_size(sizes)}
                new_chunks.append(chunk)
                if tuple(offsets) != (0,):  # a storage_data entry for the new chunk, same item
                    index, info, data = dcp.item("norm.weight")
                    new_index = stub_class(type(index).__module__, type(index).__name__)()
                    new_index.kind, new_index.args = index.kind, index.args
                    new_index.state = dict(index.state, offset=make_size(offsets))
                    new_info = stub_class(type(info).__module__, type(info).__name__)()
                    new_info.kind, new_info.args, new_info.state = info.kind, info.args, dict(info.state)
                    dcp.items.append([new_index, new_info, data])
            tensor.state["chunks"] = new_chunks
        return edit

    edited("chunks_overlap", 3, "chunks at [0] and [32] overlap", chunks([128], [([0], [64]), ([32], [64])]))
    edited("chunks_incomplete", 3, "chunks cover 64 of 128 elements", chunks([128], [([0], [64])]))
    edited("chunk_outside_tensor", 3, "lies outside the tensor shape [64]", chunks([64], [([0], [64]), ([64], [64])]))
    edited("chunk_size_disagrees", 3, "holds a tensor of shape [64] but .metadata says the chunk has size [32]",
           chunks([64], [([0], [32])]), "__0_0.distcp")

    def no_storage_entry(dcp):
        dcp.items = [item for item in dcp.items if item[0].state["fqn"] != "norm.weight"]
    edited("chunk_without_storage", 3, "no storage_data entry for the chunk at [0]", no_storage_entry, ".metadata")

    def unsupported_dtype(dcp):
        properties = dcp.tensor("norm.weight").state["properties"]
        properties.state = (stub_class("torch", "complex128"),) + tuple(properties.state[1:])
    edited("unsupported_dtype", 3, "unsupported dtype global torch.complex128", unsupported_dtype, ".metadata")

    # The tensor items (torch.save zips inside __0_0.distcp): tok_embeddings.weight [128, 64].
    def item_edit(edit):
        return lambda dcp: edit_item_tensor(dcp, "tok_embeddings.weight", edit)

    def set_arg(i, value):
        def edit(args):
            args[i] = value
            return args
        return edit

    def storage_numel(args):
        pid = list(args[0].pid)
        pid[4] = pid[4] * 2
        args[0] = PersistentId(tuple(pid))
        return args

    edited("storage_shorter_than_tensor", 3, "declares 65536 bytes but its record holds 32768", item_edit(storage_numel), "__0_0.distcp")
    edited("strides_outside_storage", 3, "size [128, 64] with stride [64, 2] at storage offset 0 reaches past its storage",
           item_edit(set_arg(3, (64, 2))), "__0_0.distcp")
    edited("storage_offset_outside", 3, "reaches past its storage of 32768 bytes", item_edit(set_arg(1, 10)), "__0_0.distcp")
    edited("negative_stride", 3, "stride holds int -1", item_edit(set_arg(3, (64, -1))), "__0_0.distcp")
    edited("strides_overflow", 3, "strides overflow", item_edit(set_arg(3, (1 << 62, 1))), "__0_0.distcp")
    edited("item_shape_disagrees", 3, "holds a tensor of shape [64, 128] but .metadata says the chunk has size [128, 64]",
           item_edit(set_arg(2, (64, 128))), "__0_0.distcp")

    def item_hostile(dcp):
        item = dcp.item("tok_embeddings.weight")
        item[2] = edit_data_pkl(item[2], lambda root: HOSTILE_PICKLES["os_system"][0])
    edited("item_pickle_os_system", 3, "refusing global os.system", item_hostile, "data.pkl")

    def item_missing_storage(dcp):
        item = dcp.item("tok_embeddings.weight")
        item[2] = make_zip([(n, d) for n, d in zip_entries(item[2]) if "/data/" not in n])
        # keep the archive otherwise valid
    edited("item_missing_storage_record", 3, "but the archive has no record", item_missing_storage, "__0_0.distcp")


def training_cases():
    """tests/fixtures/training: storage features ckconv refuses by name, and a checkpoint that
    holds training state without its model."""
    training = os.path.join(FIXTURES, "training")
    tiny = ["-m", "llama3", "-f", "debugmodel", "--set", "dim=16", "--set", "n_layers=1",
            "--set", "n_heads=2", "--set", "n_kv_heads=1", "--set", "vocab_size=32",
            "--set", "hidden_dim=16"]
    zstd = copy_tree(os.path.join(training, "zstd"), "training/zstd")
    case("training.zstd", 3, "DCP stream transform 'stream.zstd/1' (zstd compression", ".metadata",
         "to-hf", *tiny, "-i", zstd, "-o", path("out/training.zstd"))
    serialized = copy_tree(os.path.join(training, "safetensors_serialization"),
                           "training/safetensors_serialization")
    case("training.safetensors_serialization", 3,
         "serialization_format=SerializationFormat.SAFETENSORS", "__0_0.distcp", "inspect", serialized)
    shards = copy_tree(os.path.join(training, "hf_unconsolidated"), "training/hf_unconsolidated")
    case("training.hf_unconsolidated", 3, "HuggingFaceStorageWriter(save_distributed=True) before "
         "consolidation", "hf_unconsolidated", "inspect", shards)

    dcp = Dcp(os.path.join(training, "full_2026-08"))
    tensors = dcp.metadata.state["state_dict_metadata"]
    for fqn in [k for k in tensors if k.split(".")[0] not in
                ("optimizer", "lr_scheduler", "dataloader", "train_state")]:
        del tensors[fqn]
    dcp.items = [item for item in dcp.items if item[0].state["fqn"] in tensors]
    only = dcp.write("training/only_training_state")
    case("training.only_training_state", 3, "holds only training state (keys per group: "
         "dataloader 2, lr_scheduler 1, optimizer ", "only_training_state", "to-hf", *tiny, "-i", only,
         "-o", path("out/training.only_training_state"))

    dcp = gqa_dcp()
    dcp.item("norm.weight")[1].state["transform_descriptors"] = ["stream.encrypt@example/2"]
    case("training.unknown_transform", 3, "DCP stream transform 'stream.encrypt@example/2', which "
         "ckconv does not decode", ".metadata", "inspect", dcp.write("training/unknown_transform"))


def torch_save_cases():
    sd = read(os.path.join(FORMATS, "sd.pt"))
    entries = zip_entries(sd)

    def inspect(name, code, fragment, data):
        case(f"pt.{name}", code, fragment, f"{name}.pt", "inspect", write(f"pt/{name}.pt", data))

    plain = make_zip(entries)  # a standard stored zip of the same records, easy to patch
    end = plain.rfind(b"PK\x05\x06")

    def patch(data, at, fmt, *values):
        return data[:at] + struct.pack(fmt, *values) + data[at + struct.calcsize(fmt):]

    inspect("truncated_half", 3, "not a valid torch.save zip archive", sd[: len(sd) // 2])
    inspect("truncated_tail", 3, "no end-of-central-directory record", sd[:-10])
    inspect("directory_offset_bogus", 3, "overlaps the end records", patch(plain, end + 16, "<I", 0xFFFFFF00))
    inspect("directory_size_bogus", 3, "entries cannot fit in a central directory", patch(plain, end + 12, "<I", 10))
    inspect("entry_count_huge", 3, "end record needs zip64 fields but there is no zip64 locator", patch(plain, end + 8, "<HH", 0xFFFF, 0xFFFF))
    cd = plain.find(b"PK\x01\x02")
    inspect("local_header_offset_bogus", 3, "lies outside the archive", patch(plain, cd + 42, "<I", 0x7FFFFFF0))
    inspect("compressed_entry", 3, "is compressed (method 8)", patch(plain, cd + 10, "<H", 8))
    inspect("encrypted_entry", 3, "is encrypted", patch(plain, cd + 8, "<H", 1))
    inspect("duplicate_entry", 3, "duplicate entry", make_zip(entries + entries[:1]))
    fake64 = plain[:end] + b"PK\x06\x07" + struct.pack("<IQI", 0, 1 << 40, 1) + plain[end:]
    inspect("zip64_locator_bogus", 3, "zip64 end record offset 1099511627776 is invalid", fake64)
    inspect("big_endian", 3, "byte order 'big' is not supported",
            make_zip([(n, b"big" if n.endswith("/byteorder") else d) for n, d in entries]))
    inspect("no_data_pkl", 3, "data.pkl' record, not a torch.save file", make_zip([(n, d) for n, d in entries if not n.endswith("data.pkl")]))
    inspect("missing_storage_record", 3, "but the archive has no record", make_zip([(n, d) for n, d in entries if "/data/" not in n]))
    inspect("not_a_zip", 3, "no end-of-central-directory record", b"PK\x03\x04" + b"\x00" * 100)
    inspect("root_is_list", 3, "expected a state dict", edit_data_pkl(sd, lambda root: [1, 2]))

    def first_tensor(root, edit):
        key = next(k for k, v in root.items() if is_stub(v, "_rebuild_tensor_v2"))
        root[key].args = tuple(edit(list(root[key].args)))
        return root

    def grow(args):
        pid = list(args[0].pid)
        pid[4] *= 1000
        args[0] = PersistentId(tuple(pid))
        return args

    def stride(args):
        args[3] = tuple(s * 50 for s in args[3])
        return args

    inspect("storage_too_short", 3, "bytes but its record holds", edit_data_pkl(sd, lambda r: first_tensor(r, grow)))
    inspect("strides_outside", 3, "reaches past its storage", edit_data_pkl(sd, lambda r: first_tensor(r, stride)))
    for name, (data, fragment) in HOSTILE_PICKLES.items():
        if name in ("os_system", "builtins_eval", "subprocess_popen", "deep_marks", "huge_memo_index", "enormous_unicode8"):
            inspect(f"data_pkl_{name}", 3, fragment, edit_data_pkl(sd, lambda root, data=data: data))
    deep = b"\x80\x02" + (b"}X\x01\x00\x00\x00k") * 100000 + b"}" + b"s" * 100000 + b"."
    inspect("nested_100000_deep", 3, "is nested more than 64 levels deep", edit_data_pkl(sd, lambda root: deep))
    lists = b"\x80\x02}X\x01\x00\x00\x00k" + b"]" * 100000 + b"a" * 99999 + b"s."
    inspect("lists_100000_deep", 3, "is nested more than 64 levels deep", edit_data_pkl(sd, lambda root: lists))
    # A cycle through the memo: d = {}; d['k'] = [d] (the flattener must not loop forever).
    cycle = b"\x80\x02}q\x00X\x01\x00\x00\x00k]h\x00as."
    inspect("memo_cycle", 3, "is nested more than 64 levels deep", edit_data_pkl(sd, lambda root: cycle))


def model_cases():
    native = read(os.path.join(GQA, "native.safetensors"))
    tensors = st_tensors(native)

    def run(name, code, fragment, data, *extra):
        file = write(f"model/{name}.safetensors", data)
        case(f"model.{name}", code, fragment, name if "@GQA" in extra or not extra else "",
             "to-hf", *(extra or ("@GQA",)), "-i", file, "-o", path(f"out/model.{name}"))

    run("missing_tensor", 3, "missing tensors", st_rebuild([t for t in tensors if t[0] != "norm.weight"]))
    run("extra_tensor", 3, "unexpected tensors", st_rebuild(tensors + [("extra.bias", "F32", [4], bytes(16))]))
    run("int_dtype", 3, "norm.weight", st_rebuild([(n, "I32" if n == "norm.weight" else d, s, r) for n, d, s, r in tensors]))
    run("bool_dtype", 3, "norm.weight", st_rebuild([(n, "U8" if n == "norm.weight" else d, [256] if n == "norm.weight" else s, r)
                                                   for n, d, s, r in tensors]))
    run("mixed_dtypes", 3, "layers.0.ffn_norm.weight", st_rebuild(
        [(n, "F16" if n == "layers.0.ffn_norm.weight" else d, [128] if n == "layers.0.ffn_norm.weight" else s, r) for n, d, s, r in tensors]))
    run("transposed_shape", 3, "expected [32, 64], found [64, 32]", st_rebuild(
        [(n, d, s[::-1] if n == "layers.0.feed_forward.w1.weight" else s, r) for n, d, s, r in tensors]))
    run("wrong_flavor", 3, "shape mismatches", native, "-m", "llama3", "-f", "debugmodel")
    run("wrong_family", 3, "missing tensors", native, "-m", "qwen3", "-f", "debugmodel",
        "--set", "dim=64", "--set", "n_layers=2", "--set", "n_heads=4", "--set", "n_kv_heads=2",
        "--set", "vocab_size=128", "--set", "hidden_dim=32")

    # --config files (a custom family file).
    family = json.loads(read(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs", "llama3.json")))

    def config(name, code, fragment, document=None, raw=None):
        file = write(f"config/{name}.json", raw if raw is not None else json.dumps(document).encode())
        case(f"config.{name}", code, fragment, "", "to-hf", "-m", "llama3", "-f", "debugmodel", "--config", file,
             "-i", os.path.join(GQA, "native.safetensors"), "-o", path(f"out/config.{name}"))

    config("invalid_json", 2, "", raw=b'{"family": "llama3", "defaults": {')
    config("not_an_object", 2, "", raw=b"[1, 2]")
    config("no_flavors", 2, "", {k: v for k, v in family.items() if k != "flavors"})
    config("no_defaults", 2, "", {k: v for k, v in family.items() if k != "defaults"})
    config("flavor_missing", 2, "unknown flavor 'debugmodel'", dict(family, flavors={"other": {}}))
    config("field_wrong_type", 2, "dim", dict(family, flavors={"debugmodel": dict(family["flavors"]["debugmodel"], dim="wide")}))
    config("negative_dim", 2, "dim", dict(family, flavors={"debugmodel": dict(family["flavors"]["debugmodel"], dim=-64)}))
    config("unknown_family", 2, "", dict(family, family="llama9"))
    config("missing_field", 2, "missing_field.json: defaults.norm_eps is missing",
           dict(family, defaults={k: v for k, v in family["defaults"].items() if k != "norm_eps"}))
    config("unknown_field", 2, "unknown_field.json: flavors.debugmodel.dims is not a field of llama3",
           dict(family, flavors={"debugmodel": dict(family["flavors"]["debugmodel"], dims=256)}))
    # Checked when loaded, so even init (which never reads rope_theta) refuses it.
    file = write("config/invalid_default.json",
                 json.dumps(dict(family, defaults=dict(family["defaults"], rope_theta="big"))).encode())
    case("config.invalid_default_init", 2, 'invalid_default.json: defaults.rope_theta is "big"', "", "init",
         "-m", "llama3", "-f", "debugmodel", "--config", file, "-o", path("out/config.invalid_default"))
    file = write("config/set_from_invalid.json", b'{"dim": ')
    case("config.set_from_invalid_json", 2, "", "set_from_invalid", "to-hf", "-m", "llama3", "-f", "debugmodel",
         "--set-from", file, "-i", os.path.join(GQA, "native.safetensors"), "-o", path("out/config.set_from"))


def quant_cases():
    """Quantized releases (tests/make_releases.py) with a broken scale: refused before or while
    dequantizing, naming the tensors (docs/formats.md "Quantized HF inputs")."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import make_releases

    def release(name, make, edit, code, fragment, names):
        config, tensors, shards = make()
        tensors = edit(tensors)
        folder = path("quant", name, "x")[:-2]
        make_releases.write_release(folder, config, tensors, shards)
        case(f"quant.{name}", code, fragment, names, "from-hf", "-i", folder, "-o", path("out", f"quant.{name}"))

    kv = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight"
    reshape = lambda key, shape: lambda ts: [(n, d, shape if n == key else s) for n, d, s in ts]
    drop = lambda key: lambda ts: [t for t in ts if t[0] != key]
    release("fp8_bad_scale_shape", make_releases.deepseek_v3, reshape(kv + "_scale_inv", [1, 2]), 3,
            "must be F32 [2, 2]", kv + "_scale_inv")
    release("fp8_missing_scale", make_releases.deepseek_v3, drop(kv + "_scale_inv"), 3,
            "has no block scale", kv + "_scale_inv")
    release("fp8_scale_without_weight", make_releases.deepseek_v3, drop(kv), 3,
            "block scale without its weight", kv)
    experts = "model.layers.1.mlp.experts."
    release("mxfp4_missing_scales", make_releases.gpt_oss_20b, drop(experts + "down_proj_scales"), 3,
            "has no MXFP4 scales", experts + "down_proj_scales")
    release("mxfp4_bad_scales_shape", make_releases.gpt_oss_20b,
            reshape(experts + "gate_up_proj_scales", [4, 128, 2]), 3, "must be U8 [..., G]",
            experts + "gate_up_proj_scales")
    # NaN-producing scales: an fp8 block scale of +inf, an E8M0 scale byte of 255.
    make_releases.MODES.add("--nan-scales")
    release("fp8_infinite_scale", make_releases.deepseek_v3, lambda ts: ts, 3,
            "non-finite FP8 block scale", "_scale_inv")
    release("mxfp4_nan_scale", make_releases.gpt_oss_20b, lambda ts: ts, 3, "E8M0 NaN scale 255", "_scales")
    make_releases.MODES.discard("--nan-scales")
def guide_cases():
    """Each kind of disagreement and each wrong thing given: the message says what it is."""
    native = os.path.join(GQA, "native.safetensors")
    hf = os.path.join(GQA, "hf")

    def to_hf(name, code, fragment, names, source, *extra):
        case(f"guide.{name}", code, fragment, names, "to-hf", source, path(f"out/guide.{name}"), *extra)

    # Disagreements: shapes against the flavor, keys against --model, heads the shapes leave open.
    to_hf("flavor_shapes", 3, "it differs from llama3/debugmodel in dim 64 (not 256)", "", native,
          "-m", "llama3", "-f", "debugmodel")
    to_hf("flavor_fix", 3, "--set dim=64", "", native, "-f", "debugmodel")
    to_hf("family_keys", 3, "its keys are those of llama3", "", native, "-m", "qwen3", "-f", "debugmodel")
    to_hf("detected_family", 3, "but --model is qwen3", "", native, "-m", "qwen3")
    to_hf("heads_open", 2, "n_heads cannot be read from the checkpoint's shapes", "", native)
    to_hf("heads_do_not_fit", 3, "--set n_heads=3 does not split", "", native, "--set", "n_heads=3")
    with open(os.path.join(hf, "config.json")) as source:
        config = json.load(source)
    heads = write("guide/heads2_config.json", json.dumps(dict(config, num_attention_heads=2)).encode())
    to_hf("heads_config_json", 3, "num_attention_heads 2 in config.json, but n_heads 4 from --set", "",
          native, "--hf-config", heads, "--set", "n_heads=4")
    # The wrong thing given.
    to_hf("hf_to_to_hf", 3, "is an HF checkpoint (model.* keys); convert it with from-hf", "", hf)
    to_hf("hf_to_to_hf_flags", 3, "this is an HF checkpoint; convert it with from-hf", "", hf,
          "@GQA")
    case("guide.native_to_from_hf", 3, "is a native torchtitan checkpoint (llama3: dim 64", "",
         "from-hf", native, path("out/guide.native_to_from_hf"))
    case("guide.native_to_from_hf_flags", 3, "this is a native torchtitan checkpoint", "",
         "from-hf", native, path("out/guide.native_to_from_hf_flags"), "@GQA")
    readme = write("guide/README.md", b"# My model\n\nFine-tuned from Llama 3 for 3 epochs.\n")
    to_hf("readme", 3, "is a text file (README.md), not a checkpoint", "README.md", readme, "@GQA")
    dcp = copy_tree(os.path.join(GQA, "native_dcp"), "guide/dcp")
    to_hf("metadata_file", 3, "is the .metadata file of a DCP checkpoint; give its directory", "dcp",
          os.path.join(dcp, ".metadata"), "@GQA")
    index = write("guide/sharded/model.safetensors.index.json", b'{"metadata": {}, "weight_map": {}}')
    case("guide.index_json", 3, "is the index of a sharded safetensors checkpoint; give its folder", "sharded",
         "from-hf", index, path("out/guide.index_json"), "@GQA")
    case("guide.config_json", 3, "is a transformers config.json, not a checkpoint", "config.json",
         "from-hf", os.path.join(hf, "config.json"), path("out/guide.config_json"))
    for step in (100, 2000, 300):
        os.makedirs(path(f"guide/run/checkpoint/step-{step}"))
        shutil.copy(os.path.join(dcp, ".metadata"), path(f"guide/run/checkpoint/step-{step}/.metadata"))
    to_hf("dump_folder", 3, "holding step-100, step-300, step-2000; give one step, e.g. the latest",
          "checkpoint/step-2000", path("guide/run/checkpoint"), "@GQA")
    to_hf("run_folder", 3, "give one step, e.g. the latest", "step-2000", path("guide/run"), "@GQA")
def layout_cases():
    """HF checkpoints mixing two layouts (docs/mappings.md "HF layouts"): one layout or the other."""
    adapters = os.path.join(FIXTURES, "adapters")

    def from_hf(name, fragment, fixture, edit):
        tensors = st_tensors(read(os.path.join(adapters, fixture, "hf", "model.safetensors")))
        file = write(f"layout/{name}/model.safetensors", st_rebuild(edit(tensors)))
        flavor = os.path.join(adapters, fixture, "flavor.json")
        family = json.loads(read(flavor))
        case(f"layout.{name}", 3, fragment, "", "from-hf", "-m", family["family"], "-f", family["base_flavor"],
             "--set-from", flavor, "-i", os.path.dirname(file), "-o", path(f"out/layout.{name}"))

    # One layer of qwen3 MoE experts per expert, plus a fused gate_up_proj of the other layer.
    from_hf("mixed_expert_layouts", "mixes two expert layouts", "qwen3_tiny_moe", lambda tensors: tensors + [
        ("model.layers.1.mlp.experts.gate_up_proj", "F32", [12, 64, 64], bytes(12 * 64 * 64 * 4))])
    # llama4 under language_model. with one key of Llama4ForCausalLM's layout.
    # A DeepSeek-V3 multi-token-prediction layer whose stored copy of a shared tensor differs
    # from the main one: never dropped silently.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mtp_layer
    flavor = os.path.join(adapters, "deepseek_v3_tiny", "flavor.json")
    for copy, main in (("embed", "model.embed_tokens.weight"), ("head", "lm_head.weight")):
        directory = path(f"layout/mtp_{copy}_differs")
        mtp_layer.add_mtp_layer(os.path.join(adapters, "deepseek_v3_tiny", "hf"), directory, copy)
        case(f"layout.mtp_{copy}_differs", 3, f"differs from '{main}'", "", "from-hf", "-m", "deepseek_v3",
             "-f", "debugmodel", "--set-from", flavor, "-i", directory, "-o", path(f"out/layout.mtp_{copy}"))
    from_hf("mixed_llama4_prefixes", "mixes two llama4 key layouts", "llama4_tiny", lambda tensors: [
        (n.replace("language_model.", "", 1) if n.endswith("model.norm.weight") else n, d, sh, r)
        for n, d, sh, r in tensors])


def train_config_cases():
    """--train-config: each disagreement with the flags or the input, and each broken file."""
    native = os.path.join(GQA, "native.safetensors")
    hf = os.path.join(GQA, "hf")
    job = ('[job]\ndump_folder = "./outputs"\n\n[model]\nname = "{name}"\nflavor = "{flavor}"\n'
           '\n[checkpoint]\nexport_dtype = "{dtype}"\n')

    def config(name, text):
        return write(f"train/{name}", text.encode())

    debug = config("debugmodel.toml", job.format(name="llama3", flavor="debugmodel", dtype="float32"))

    def to_hf(name, code, fragment, names, train, *extra):
        case(f"train.{name}", code, fragment, names, "to-hf", native, path(f"out/train.{name}"),
             "--train-config", train, *extra)

    to_hf("flavor_shapes", 3, "it differs from llama3/debugmodel in dim 64 (not 256)", "", debug)
    to_hf("flag_flavor", 3, 'model.flavor "debugmodel" in', "but --flavor 8B", debug, "-f", "8B")
    to_hf("flag_model", 3, 'model.name "llama3" in', "but --model qwen3", debug, "-m", "qwen3")
    to_hf("flag_set", 3, "n_layers 2 from --set, but 6 in flavor debugmodel", "debugmodel.toml", debug,
          "--set", "n_layers=2")
    case("train.config_json", 3, "in config.json, but", "from train-config (flavor debugmodel)",
         "from-hf", hf, path("out/train.config_json"), "--train-config", debug)
    python = config("config_registry.py", "def llama3_debugmodel():\n    return None\n")
    to_hf("python", 2, "cannot execute", "config_registry.py", python)
    to_hf("syntax", 3, "syntax.toml:2: inline tables", "", config("syntax.toml", '[model]\nname = {a = 1}\n'))
    to_hf("unknown_model", 3, 'model.name "flux" is no family this build converts', "",
          config("flux.toml", job.format(name="flux", flavor="flux-dev", dtype="float32")))
    to_hf("no_flavor", 3, "names no model", "", config("no_flavor.toml", '[model]\nname = "llama3"\n'))
    to_hf("export_dtype", 3, 'export_dtype "fp8" is none of', "",
          config("fp8.toml", job.format(name="llama3", flavor="debugmodel", dtype="fp8")))
    to_hf("saved_json", 3, "saved.json is not valid JSON", "", config("saved.json", '{"model_spec": {"name": "llama3",'))


safetensors_cases()
index_cases()
dcp_cases()
training_cases()
torch_save_cases()
model_cases()
quant_cases()
guide_cases()
layout_cases()
train_config_cases()
with open(os.path.join(OUT, "cases.tsv"), "w") as manifest:
    for row in cases:
        manifest.write("\t".join(row) + "\n")
print(f"{len(cases)} cases in {OUT}")
