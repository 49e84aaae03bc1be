// Fuzzes the restricted pickle reader, then describes every value it produced (what error
// messages of the DCP and torch.save readers do).
#include "formats/pickle/pickle_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  fuzz::expect_result_or_bad_input([&] {
    PickleDocument document = read_pickle(fuzz::as_bytes(data, size), "fuzz");
    const PickleValue& root = document.root();
    describe_pickle_value(root);
    for (const PickleValue* item : root.items) describe_pickle_value(*item);
    for (const auto& [key, value] : root.entries) {
      describe_pickle_value(*key);
      describe_pickle_value(*value);
    }
  });
  return 0;
}
