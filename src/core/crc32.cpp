// zlib's CRC-32 through ISA-L (libisal), which folds 64 bytes per step with PCLMULQDQ.
#include "core/crc32.h"

#include <isa-l/crc.h>

namespace ckconv {

uint32_t crc32_update(uint32_t crc, const void* data, size_t size_bytes) {
  if (size_bytes == 0) return crc;
  // crc32_gzip_refl pre- and post-inverts as zlib does, so its running value is zlib's.
  return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), size_bytes);
}

}  // namespace ckconv
