// Runs one fuzz target's LLVMFuzzerTestOneInput once on every file of the given corpus
// directories (or files), without libFuzzer: the ordinary build (GCC, and the sanitizer build
// that CI runs) replays the saved corpus and kept crashers as ctest tests `fuzz_replay.*`.
// A finding aborts, as it would under libFuzzer.
//   fuzz_replay TARGET CORPUS_DIR_OR_FILE...   (TARGET: e.g. zip_fuzz)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "replay_targets.h"

namespace {

using TestOneInput = int (*)(const uint8_t* data, size_t size);

void replay_file(TestOneInput test_one_input, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>()};
  // A copy of exactly `size` bytes, so that ASan sees reads past the end of the input.
  std::vector<uint8_t> exact(bytes);
  test_one_input(exact.empty() ? nullptr : exact.data(), exact.size());
}

}  // namespace

int main(int argc, char** argv) {
  TestOneInput test_one_input = nullptr;
  if (argc >= 3) {
    for (const auto& target : ckconv::fuzz::replay_targets())
      if (std::strcmp(target.name, argv[1]) == 0) test_one_input = target.test_one_input;
  }
  if (test_one_input == nullptr) {
    std::fprintf(stderr, "usage: %s TARGET CORPUS_DIR_OR_FILE... (TARGET: one of", argv[0]);
    for (const auto& target : ckconv::fuzz::replay_targets())
      std::fprintf(stderr, " %s", target.name);
    std::fprintf(stderr, ")\n");
    return 2;
  }
  size_t count = 0;
  for (int i = 2; i < argc; ++i) {
    const std::filesystem::path path = argv[i];
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path))
        if (entry.is_regular_file()) files.push_back(entry.path());
    } else {
      files.push_back(path);
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      replay_file(test_one_input, file);
      ++count;
    }
  }
  std::printf("replayed %zu inputs\n", count);
  return count == 0 ? 1 : 0;
}
