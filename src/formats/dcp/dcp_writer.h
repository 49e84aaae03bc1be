// Plans a torch.distributed.checkpoint directory as a single-process
// torch.distributed.checkpoint.save writes it (docs/formats.md "DCP directories"), so that
// torch.distributed.checkpoint.load (PyTorch 2.6 and 2.14, with or without a process group)
// and torchtitan's resume load the tensors bit-exactly:
//   __0_0.distcp  (or the name options give) one torch.save archive per tensor (archive dir
//   `archive/`, offsets relative
//                 to the item), concatenated in the given order;
//   .metadata     Metadata{state_dict_metadata, planner_data {fqn: (fqn,)}, storage_data,
//                 [storage_meta], version "1.0.0"} pickled with protocol 2; literal-only.
// The bytes are a pure function of the specs and options: no random save_id.
#pragma once

#include <string>
#include <vector>

#include "formats/file_plan.h"

namespace ckconv {

inline constexpr const char* kDcpDataFileName = "__0_0.distcp";

struct DcpWriteOptions {
  // Also write StorageMeta (checkpoint_id as given, a save_id derived from the tensor specs).
  // PyTorch does not need it to load; off by default.
  bool include_storage_meta = false;
  std::string checkpoint_id;
  // The data file's name, as .metadata names it: kDcpDataFileName unless the output
  // directory holds a file of that name (dcp_data_file_name_for, pipeline/publish.h), so
  // that publishing over an old DCP checkpoint never overwrites a file its .metadata names.
  std::string data_file_name = kDcpDataFileName;
};

// files[0] is the .distcp file, files[1] the .metadata. Throws kBadInput for duplicate names
// and dtypes torch.save cannot hold.
FilePlan plan_dcp(const std::vector<OutputTensorSpec>& tensors, const DcpWriteOptions& options);

}  // namespace ckconv
