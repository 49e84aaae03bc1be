// Fuzzes the zip directory reader: the central directory, then every entry's local header and
// (bounded) data, as the torch.save reader uses them.
#include "formats/torch_save/zip_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckconv;
  const std::filesystem::path path = fuzz::scratch_dir() / "archive.zip";
  fuzz::write_bytes(path, fuzz::as_bytes(data, size));
  File file = File::open_read(path);
  // The archive as a whole file, and as an item at an offset of a larger file (DCP).
  for (uint64_t offset : {uint64_t{0}, uint64_t{size / 3}}) {
    fuzz::expect_result_or_bad_input([&] {
      ZipReader zip(file, offset, size - offset, "fuzz");
      for (const ZipEntry& entry : zip.entries()) {
        fuzz::expect_result_or_bad_input([&] {
          uint64_t at = zip.data_offset(entry);
          if (at < offset || at > size || entry.size_bytes > size - at) std::abort();
          zip.read(entry, 1 << 16);
        });
      }
    });
  }
  return 0;
}
