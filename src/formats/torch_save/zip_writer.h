// Plans a stored zip archive byte for byte as PyTorch's PyTorchStreamWriter (miniz) writes
// it (docs/formats.md "torch.save zip archives"): entries stored, flags 0x0808 with zeroed local
// sizes and a data descriptor after the data, DOS time 0, each entry's data 64-byte aligned from
// the archive start by an "FB" extra field of 'Z' bytes, zip64 extra fields for entries of 4 GiB or
// more or at offsets of 4 GiB or more, and always the zip64 end record + locator + end record.
//
// Only headers are produced; entries whose content the caller does not give are left as holes
// for the executor to fill, together with the places their CRC-32 must be patched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/file_plan.h"

namespace ckconv {

struct ZipEntrySpec {
  std::string name;
  uint64_t size_bytes = 0;
  // The entry's bytes when known now (records such as data.pkl); std::nullopt for tensor
  // data the executor writes later.
  std::optional<std::string> content;
};

struct PlannedZip {
  uint64_t size_bytes = 0;
  std::vector<LiteralBytes> literals;  // offsets relative to the archive start
  std::vector<uint64_t> data_offsets;  // per entry, relative to the archive start
  // Per entry: where its CRC-32 must be written (data descriptor and central directory);
  // empty for entries with `content`, whose CRC is already in the literals.
  std::vector<std::vector<uint64_t>> crc_offsets;
};

inline constexpr uint64_t kTorchSaveAlignment = 64;

PlannedZip plan_stored_zip(const std::vector<ZipEntrySpec>& entries);

}  // namespace ckconv
