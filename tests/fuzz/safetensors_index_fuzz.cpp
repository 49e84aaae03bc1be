// Fuzzes the model.safetensors.index.json parser. Accepted file names must be plain names,
// or plain names in the publish's kept folder (kPreviousShardsFolder).
#include "formats/safetensors/safetensors_index.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  fuzz::expect_result_or_bad_input([&] {
    SafetensorsIndex index = parse_safetensors_index(fuzz::as_bytes(data, size), "fuzz");
    const std::string kept = std::string(kPreviousShardsFolder) + "/";
    for (const auto& [name, entry] : index.weight_map) {
      const std::string file = entry.rfind(kept, 0) == 0 ? entry.substr(kept.size()) : entry;
      if (file.find('/') != std::string::npos || file == ".." || file.empty()) std::abort();
    }
  });
  return 0;
}
