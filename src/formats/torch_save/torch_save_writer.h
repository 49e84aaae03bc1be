// Plans torch.save archives that torch.load(weights_only=True) reads (PyTorch 2.6 and later),
// laid out as PyTorch 2.14 writes them (docs/formats.md "torch.save zip archives"): records
// `<archive>/data.pkl`, `.format_version`, `.storage_alignment`, `byteorder`, `data/0`...,
// `version`; stored, 64-byte aligned, with data descriptors and zip64 records. The optional
// `.data/serialization_id` is omitted (it is informational and would depend on tensor bytes).
// Each tensor gets its own contiguous storage, pickled with _rebuild_tensor_v2 (dtypes with a
// legacy storage class) or _rebuild_tensor_v3 (float8, uint16/32/64). Output is a pure
// function of the specs, so equal inputs give equal bytes.
#pragma once

#include <string>
#include <vector>

#include "formats/file_plan.h"
#include "formats/pickle/pickle_writer.h"
#include "formats/torch_save/zip_writer.h"

namespace ckconv {

// One output file `<archive_name>.pt` holding the tensors as a dict {name: tensor} in the
// given order. Throws kBadInput for dtypes torch.save cannot hold (sub-byte types) or
// duplicate names.
FilePlan plan_torch_save(const std::vector<OutputTensorSpec>& tensors,
                         const std::string& archive_name);

// Building blocks shared with the DCP writer.

// Emits the pickle expression of `tensor` stored whole and contiguous in storage `key`.
void write_tensor_pickle(PickleWriter& writer, const OutputTensorSpec& tensor,
                         const std::string& storage_key);
// A torch.save archive with the given data.pkl and storages data/0, data/1, ... of the given
// sizes, whose contents are left for the executor. Storage i is zip entry
// kFirstStorageEntry + i of the plan.
inline constexpr size_t kFirstStorageEntry = 4;
PlannedZip plan_torch_save_archive(const std::string& archive_name, const std::string& data_pickle,
                                   const std::vector<uint64_t>& storage_sizes_bytes);

}  // namespace ckconv
