// Fuzzes the safetensors file parser (length prefix, header JSON, data section checks) on a
// whole file image. Accepted headers must tile the data section exactly.
#include "formats/safetensors/safetensors_header.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  fuzz::expect_result_or_bad_input([&] {
    SafetensorsHeader header = parse_safetensors_file_bytes(fuzz::as_bytes(data, size), "fuzz");
    uint64_t end = 0;
    for (const SafetensorsEntry& entry : header.tensors) {
      if (entry.data_begin != end) std::abort();
      end = entry.data_end;
    }
    if (header.data_section_offset() + end != size) std::abort();
  });
  return 0;
}
