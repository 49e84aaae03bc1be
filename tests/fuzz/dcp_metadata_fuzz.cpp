// Fuzzes the DCP reader: the .metadata pickle and its interpretation, and the torch.save
// items it points at. An input is a u32 LE length L, then L bytes of .metadata, then the
// bytes of __0_0.distcp, so both files mutate together (seeds: tests/fuzz/make_seeds.sh).
#include "formats/dcp/dcp_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  if (size < 4) return 0;
  uint64_t metadata_size = data[0] | data[1] << 8 | data[2] << 16 | uint64_t{data[3]} << 24;
  if (metadata_size > size - 4) return 0;
  const std::filesystem::path dir = fuzz::scratch_dir() / "checkpoint";
  std::filesystem::create_directories(dir);
  fuzz::write_bytes(dir / ".metadata", fuzz::as_bytes(data + 4, metadata_size));
  fuzz::write_bytes(dir / "__0_0.distcp",
                    fuzz::as_bytes(data + 4 + metadata_size, size - 4 - metadata_size));
  fuzz::expect_result_or_bad_input([&] { read_dcp(dir); });
  return 0;
}
