// The allow-list of pickle globals: every class and function torch.save (weights-only
// subset) and DCP .metadata pickles reference. read_pickle refuses any other global.
#include <array>
#include <string_view>

#include "formats/pickle/pickle_reader.h"

namespace ckconv {
namespace {

struct AllowedGlobal {
  std::string_view module;
  std::string_view name;
};

// Every global torch.save (weights-only subset, docs/formats.md "torch.save zip archives") and DCP
// .metadata ("DCP directories") pickles. Listed one by one so an attacker cannot reach anything by
// a clever prefix.
constexpr std::array kAllowedGlobals = {
    AllowedGlobal{"collections", "OrderedDict"},
    AllowedGlobal{"collections", "Counter"},
    AllowedGlobal{"builtins", "set"},
    AllowedGlobal{"builtins", "bytearray"},
    AllowedGlobal{"builtins", "complex"},
    AllowedGlobal{"_codecs", "encode"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor_v2"},
    AllowedGlobal{"torch._utils", "_rebuild_tensor_v3"},
    AllowedGlobal{"torch._utils", "_rebuild_parameter"},
    AllowedGlobal{"torch._utils", "_rebuild_parameter_with_state"},
    AllowedGlobal{"torch._utils", "_rebuild_qtensor"},
    AllowedGlobal{"torch._utils", "_rebuild_sparse_tensor"},
    AllowedGlobal{"torch._utils", "_rebuild_meta_tensor_no_storage"},
    AllowedGlobal{"torch._utils", "_rebuild_wrapper_subclass"},
    AllowedGlobal{"torch._tensor", "_rebuild_from_type_v2"},
    AllowedGlobal{"torch.nn.parameter", "Parameter"},
    AllowedGlobal{"torch.serialization", "_get_layout"},
    AllowedGlobal{"torch.storage", "UntypedStorage"},
    AllowedGlobal{"torch.storage", "TypedStorage"},
    AllowedGlobal{"torch", "Size"},
    AllowedGlobal{"torch", "device"},
    AllowedGlobal{"torch", "Tensor"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "Metadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "TensorStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "BytesStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "TensorProperties"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "MetadataIndex"},
    AllowedGlobal{"torch.distributed.checkpoint.metadata", "StorageMeta"},
    AllowedGlobal{"torch.distributed.checkpoint.filesystem", "_StorageInfo"},
    AllowedGlobal{"pathlib", "PosixPath"},
    AllowedGlobal{"pathlib", "PurePosixPath"},
    AllowedGlobal{"pathlib._local", "PosixPath"},
    AllowedGlobal{"pathlib._local", "PurePosixPath"},
};

// Attributes of the `torch` module that are dtypes or storage classes.
constexpr std::array<std::string_view, 72> kTorchDtypesAndStorages = {
    "float32",
    "float",
    "float64",
    "double",
    "float16",
    "half",
    "bfloat16",
    "complex32",
    "chalf",
    "complex64",
    "cfloat",
    "complex128",
    "cdouble",
    "uint8",
    "int8",
    "int16",
    "short",
    "int32",
    "int",
    "int64",
    "long",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "quint8",
    "qint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bits16",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "DoubleStorage",
    "FloatStorage",
    "HalfStorage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "BFloat16Storage",
    "ComplexDoubleStorage",
    "ComplexFloatStorage",
    "QInt8Storage",
    "QInt32Storage",
    "QUInt8Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
};

}  // namespace

bool is_allowed_pickle_global(std::string_view module, std::string_view name) {
  for (const auto& allowed : kAllowedGlobals)
    if (allowed.module == module && allowed.name == name) return true;
  if (module == "torch")
    for (std::string_view attribute : kTorchDtypesAndStorages)
      if (attribute == name) return true;
  return false;
}

}  // namespace ckconv
