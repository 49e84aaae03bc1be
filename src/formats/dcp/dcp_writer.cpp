// The .metadata pickle follows the protocol-2 template of docs/formats.md "DCP directories"
// (verified there to load with dcp.load on 2.14); the items are torch.save archives
// (docs/formats.md "DCP directories").
#include "formats/dcp/dcp_writer.h"

#include <cstdio>
#include <functional>
#include <set>

#include "core/error.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/pickle/pickle_writer.h"
#include "formats/torch_save/torch_save_writer.h"

namespace ckconv {
namespace {

constexpr size_t kBatch = 1000;  // Python's SETITEMS batch size

struct WrittenItem {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A dict of `count` entries, each emitted as key then value by `entry(i)`.
void write_dict(PickleWriter& writer, size_t count, const std::function<void(size_t)>& entry) {
  writer.empty_dict();
  for (size_t start = 0; start < count; start += kBatch) {
    writer.mark();
    for (size_t i = start; i < std::min(count, start + kBatch); ++i) entry(i);
    writer.set_items();
  }
}

// cls() with its fields set by BUILD, as pickle does for a dataclass instance.
void write_dataclass(PickleWriter& writer, std::string_view module, const char* cls,
                     size_t field_count, const std::function<void(size_t)>& field) {
  writer.global(module, cls);
  writer.begin_tuple(0);
  writer.end_tuple(0);
  writer.new_object();
  write_dict(writer, field_count, field);
  writer.build();
}

void write_torch_size(PickleWriter& writer, const Shape& shape) {
  writer.global("torch", "Size");
  writer.begin_tuple(1);
  writer.int_tuple(shape);
  writer.end_tuple(1);
  writer.reduce();
}

void write_tensor_properties(PickleWriter& writer, DType dtype) {
  writer.global(kDcpMetadataModule, "TensorProperties");
  writer.begin_tuple(0);
  writer.end_tuple(0);
  writer.new_object();
  // TensorProperties.__getstate__: (dtype, layout, requires_grad, memory_format, pin_memory).
  writer.begin_tuple(5);
  writer.global("torch", dtype_torch_name(dtype));
  writer.global("torch.serialization", "_get_layout");
  writer.begin_tuple(1);
  writer.string("torch.strided");
  writer.end_tuple(1);
  writer.reduce();
  writer.boolean(false);
  writer.global(kDcpMetadataModule, "_MEM_FORMAT_ENCODING");
  writer.begin_tuple(1);
  writer.integer(0);  // TORCH_CONTIGUOUS_FORMAT
  writer.end_tuple(1);
  writer.reduce();
  writer.boolean(false);
  writer.end_tuple(5);
  writer.build();
}

// A UUID-shaped id derived from the tensor specs (FNV-1a, 128 bits as two 64-bit lanes), so
// equal checkpoints get equal bytes.
std::string derived_save_id(const std::vector<OutputTensorSpec>& tensors) {
  uint64_t lanes[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
  auto mix = [&](std::string_view text) {
    for (char c : text)
      for (uint64_t& lane : lanes) lane = (lane ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    lanes[1] = (lanes[1] ^ 0xff) * 0x100000001b3ull;  // keep the lanes apart
  };
  for (const OutputTensorSpec& tensor : tensors) {
    mix(tensor.name);
    mix(dtype_name(tensor.dtype));
    mix(shape_to_string(tensor.shape));
  }
  char text[40];
  std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(lanes[0] >> 32),
                static_cast<unsigned>((lanes[0] >> 16) & 0xffff),
                static_cast<unsigned>(lanes[0] & 0xffff), static_cast<unsigned>(lanes[1] >> 48),
                static_cast<unsigned long long>(lanes[1] & 0xffffffffffffull));
  return text;
}

// Metadata.state_dict_metadata: per tensor a TensorStorageMetadata with one whole chunk.
void write_state_dict_metadata(PickleWriter& w, const std::vector<OutputTensorSpec>& tensors) {
  write_dict(w, tensors.size(), [&](size_t i) {
    w.string(tensors[i].name);
    write_dataclass(w, kDcpMetadataModule, "TensorStorageMetadata", 3, [&](size_t f) {
      if (f == 0) {
        w.string("properties");
        write_tensor_properties(w, tensors[i].dtype);
      } else if (f == 1) {
        w.string("size");
        write_torch_size(w, tensors[i].shape);
      } else {
        w.string("chunks");
        w.empty_list();
        write_dataclass(w, kDcpMetadataModule, "ChunkStorageMetadata", 2, [&](size_t g) {
          w.string(g == 0 ? "offsets" : "sizes");
          write_torch_size(w, g == 0 ? Shape(tensors[i].shape.size(), 0) : tensors[i].shape);
        });
        w.append();
      }
    });
  });
}

// Metadata.planner_data: each fqn maps to the 1-tuple of itself.
void write_planner_data(PickleWriter& w, const std::vector<OutputTensorSpec>& tensors) {
  write_dict(w, tensors.size(), [&](size_t i) {
    w.string(tensors[i].name);
    w.begin_tuple(1);
    w.string(tensors[i].name);
    w.end_tuple(1);
  });
}

// Metadata.storage_data: MetadataIndex(fqn, 0, zero offsets) -> _StorageInfo of its item.
void write_storage_data(PickleWriter& w, const std::vector<OutputTensorSpec>& tensors,
                        const std::vector<WrittenItem>& items, const std::string& data_file) {
  write_dict(w, tensors.size(), [&](size_t i) {
    write_dataclass(w, kDcpMetadataModule, "MetadataIndex", 3, [&](size_t f) {
      if (f == 0) {
        w.string("fqn");
        w.string(tensors[i].name);
      } else if (f == 1) {
        w.string("index");
        w.integer(0);
      } else {
        w.string("offset");
        write_torch_size(w, Shape(tensors[i].shape.size(), 0));
      }
    });
    write_dataclass(w, "torch.distributed.checkpoint.filesystem", "_StorageInfo", 3, [&](size_t f) {
      if (f == 0) {
        w.string("relative_path");
        w.string(data_file);
      } else if (f == 1) {
        w.string("offset");
        w.integer(static_cast<int64_t>(items[i].offset));
      } else {
        w.string("length");
        w.integer(static_cast<int64_t>(items[i].length));
      }
    });
  });
}

// Metadata.storage_meta: StorageMeta(checkpoint_id, derived save_id, load_id=None).
void write_storage_meta(PickleWriter& w, const std::vector<OutputTensorSpec>& tensors,
                        const DcpWriteOptions& options) {
  write_dataclass(w, kDcpMetadataModule, "StorageMeta", 3, [&](size_t f) {
    if (f == 0) {
      w.string("checkpoint_id");
      w.string(options.checkpoint_id);
    } else if (f == 1) {
      w.string("save_id");
      w.string(derived_save_id(tensors));
    } else {
      w.string("load_id");
      w.none();
    }
  });
}

std::string metadata_pickle(const std::vector<OutputTensorSpec>& tensors,
                            const std::vector<WrittenItem>& items, const DcpWriteOptions& options) {
  PickleWriter w;
  const size_t field_count = 4 + (options.include_storage_meta ? 1 : 0);
  write_dataclass(w, kDcpMetadataModule, "Metadata", field_count, [&](size_t field) {
    switch (field) {
      case 0:
        w.string("state_dict_metadata");
        write_state_dict_metadata(w, tensors);
        return;
      case 1:
        w.string("planner_data");
        write_planner_data(w, tensors);
        return;
      case 2:
        w.string("storage_data");
        write_storage_data(w, tensors, items, options.data_file_name);
        return;
      case 3:
        if (options.include_storage_meta) {
          w.string("storage_meta");
          write_storage_meta(w, tensors, options);
          return;
        }
        [[fallthrough]];
      default:
        w.string("version");
        w.string("1.0.0");  // filesystem.CURRENT_DCP_VERSION of PyTorch 2.14
        return;
    }
  });
  return w.finish();
}

}  // namespace

FilePlan plan_dcp(const std::vector<OutputTensorSpec>& tensors, const DcpWriteOptions& options) {
  std::set<std::string> names;
  for (const OutputTensorSpec& tensor : tensors)
    if (!names.insert(tensor.name).second)
      fail_input("duplicate tensor name '" + tensor.name + "' for a DCP checkpoint");

  FilePlan file_plan;
  PlannedFile data;
  CKCONV_CHECK(
      options.data_file_name.size() > 7 && options.data_file_name.find('/') == std::string::npos &&
      options.data_file_name.compare(options.data_file_name.size() - 7, 7, ".distcp") == 0);
  data.relative_path = options.data_file_name;
  std::vector<WrittenItem> items;
  for (size_t i = 0; i < tensors.size(); ++i) {
    PickleWriter writer;
    write_tensor_pickle(writer, tensors[i], "0");
    PlannedZip zip = plan_torch_save_archive("archive", writer.finish(),
                                             {static_cast<uint64_t>(tensors[i].size_bytes())});
    const uint64_t base = data.size_bytes;
    for (LiteralBytes& literal : zip.literals) {
      literal.offset += base;
      data.literals.push_back(std::move(literal));
    }
    file_plan.placements.push_back(
        TensorPlacement{i, 0, base + zip.data_offsets[kFirstStorageEntry]});
    for (uint64_t offset : zip.crc_offsets[kFirstStorageEntry])
      file_plan.crc_patches.push_back(Crc32Patch{i, 0, base + offset});
    items.push_back(WrittenItem{base, zip.size_bytes});
    data.size_bytes += zip.size_bytes;
  }
  file_plan.files.push_back(std::move(data));

  PlannedFile metadata;
  metadata.relative_path = ".metadata";
  std::string bytes = metadata_pickle(tensors, items, options);
  metadata.size_bytes = bytes.size();
  metadata.literals.push_back(LiteralBytes{0, std::move(bytes)});
  file_plan.files.push_back(std::move(metadata));
  return file_plan;
}

}  // namespace ckconv
