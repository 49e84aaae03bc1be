// Fuzzes the whole torch.save reader: zip directory, data.pkl through the restricted pickle
// reader, tensor records, storages and the state-dict flattening.
#include "formats/torch_save/torch_save_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  const std::filesystem::path path = fuzz::scratch_dir() / "checkpoint.pt";
  fuzz::write_bytes(path, fuzz::as_bytes(data, size));
  fuzz::expect_result_or_bad_input([&] { read_torch_save(path); });
  return 0;
}
