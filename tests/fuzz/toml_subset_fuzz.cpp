// Fuzzes the TOML subset reader of --train-config files. An accepted document is a JSON object
// that can be written back out (its strings are valid UTF-8).
#include "formats/toml/toml_subset.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  fuzz::expect_result_or_bad_input([&] {
    const nlohmann::json document = parse_toml_subset(fuzz::as_bytes(data, size), "fuzz");
    if (!document.is_object()) std::abort();
    static_cast<void>(document.dump());
  });
  return 0;
}
