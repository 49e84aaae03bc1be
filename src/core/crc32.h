// The CRC-32 that zip entries carry: zlib's crc32() (reflected IEEE polynomial 0xEDB88320).
// Every tensor ckconv writes into a torch.save archive or a DCP .distcp file passes through it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ckconv {

// Continues `crc` (0 to start) over `size_bytes` bytes at `data`: equal to zlib's
// crc32(crc, data, size_bytes) for every input, so results chain and combine with
// crc32_combine. Computed by ISA-L's carry-less-multiply kernels, chosen at run time for the
// CPU (why not zlib's: docs/benchmarks.md, "What made it fast").
uint32_t crc32_update(uint32_t crc, const void* data, size_t size_bytes);

}  // namespace ckconv
