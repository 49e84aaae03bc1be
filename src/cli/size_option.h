// Byte sizes given on the command line (--max-shard-size 5GB). CLI11's AsSizeValue holds the
// unit table and does the overflow-checked multiply; parse_size around it keeps the meaning
// huggingface_hub gives sizes and refuses what CLI11 alone would misread.
#pragma once

#include <cstdint>
#include <string_view>

namespace ckconv::cli {

// to-hf's default --max-shard-size: huggingface_hub's MAX_SHARD_SIZE "5GB" (hub uploads want
// files well under 50 GB), so a model above 5 GB of tensors is written as shards + index.
inline constexpr uint64_t kDefaultMaxShardSizeBytes = 5'000'000'000;

// A decimal number (digits, optionally with a fraction: "1.5GB") and an optional unit, case
// insensitive, spaces allowed around both: none or B for bytes; KB, MB, GB, TB, PB, EB and
// K, M, G, T, P, E for powers of 1000 (huggingface_hub's "5GB" is 5 * 10^9 bytes); KiB, MiB,
// GiB, TiB, PiB, EiB and Ki, Mi, Gi, Ti, Pi, Ei for powers of 1024. A fraction needs a unit
// above bytes and is floored to whole bytes. Throws kUsage: "invalid size" for any other
// spelling, "too large" above 2^64 - 1 bytes, "must be positive" for zero.
uint64_t parse_size(std::string_view text);

}  // namespace ckconv::cli
