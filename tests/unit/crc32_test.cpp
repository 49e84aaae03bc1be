// crc32_update against zlib's crc32(), the definition zip readers check: every length around
// the kernels' 16/64/256-byte steps, every start alignment, chaining, and the empty input.
#include "core/crc32.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <vector>

namespace ckconv {
namespace {

uint32_t zlib_crc(uint32_t crc, const uint8_t* data, size_t size_bytes) {
  return static_cast<uint32_t>(crc32_z(crc, data, size_bytes));
}

std::vector<uint8_t> pseudo_random_bytes(size_t count) {
  std::vector<uint8_t> bytes(count);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint8_t& byte : bytes) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    byte = static_cast<uint8_t>(state >> 24);
  }
  return bytes;
}

TEST_CASE("crc32_update is zlib's crc32 at every length, alignment and starting value") {
  const std::vector<uint8_t> bytes = pseudo_random_bytes(70000);
  for (size_t shift = 0; shift < 16; ++shift)
    for (size_t size : {0,  1,   2,   3,   7,   15,  16,  17,   31,   32,   63,    64,
                        65, 127, 128, 129, 255, 256, 257, 1023, 4096, 4099, 65536, 69000}) {
      CAPTURE(shift);
      CAPTURE(size);
      CHECK(crc32_update(0, bytes.data() + shift, size) == zlib_crc(0, bytes.data() + shift, size));
      CHECK(crc32_update(0xdeadbeef, bytes.data() + shift, size) ==
            zlib_crc(0xdeadbeef, bytes.data() + shift, size));
    }
  CHECK(crc32_update(0, nullptr, 0) == 0);
  CHECK(crc32_update(0x12345678, nullptr, 0) == 0x12345678);
}

TEST_CASE("crc32_update chains: two pieces give the CRC of the whole") {
  const std::vector<uint8_t> bytes = pseudo_random_bytes(10000);
  const uint32_t whole = zlib_crc(0, bytes.data(), bytes.size());
  for (size_t cut : {0, 1, 63, 64, 4095, 9999, 10000})
    CHECK(crc32_update(crc32_update(0, bytes.data(), cut), bytes.data() + cut,
                       bytes.size() - cut) == whole);
  // A known value: CRC-32 of "123456789" is 0xCBF43926 (the check value of the standard).
  const char* digits = "123456789";
  CHECK(crc32_update(0, digits, 9) == 0xCBF43926u);
}

}  // namespace
}  // namespace ckconv
