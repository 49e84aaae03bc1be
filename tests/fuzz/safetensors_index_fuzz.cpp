// Fuzzes the model.safetensors.index.json parser. Accepted file names must be plain names.
#include "formats/safetensors/safetensors_index.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  fuzz::expect_result_or_bad_input([&] {
    SafetensorsIndex index = parse_safetensors_index(fuzz::as_bytes(data, size), "fuzz");
    for (const auto& [name, file] : index.weight_map)
      if (file.find('/') != std::string::npos || file == ".." || file.empty()) std::abort();
  });
  return 0;
}
