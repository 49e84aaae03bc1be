// Shared by the libFuzzer targets of tests/fuzz (built with -DCKCONV_FUZZ=ON, run by
// scripts/fuzz.sh). A target passes untrusted bytes to one parser; the only acceptable
// outcomes are a result or a kBadInput ckconv::Error. Anything else (a sanitizer report, a
// crash, another exception, an internal error, unbounded memory) is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace ckconv::fuzz {

inline std::string_view as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`; a kBadInput Error is the expected refusal, any other kind aborts the run.
template <typename Function>
void expect_result_or_bad_input(Function&& parse) {
  try {
    parse();
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::kBadInput) {
      std::fprintf(stderr, "unexpected error kind %d: %s\n", error.exit_code(), error.what());
      std::abort();
    }
  }
}

// A private scratch directory (on tmpfs when available) for parsers that read files; removed
// at exit. Readers of zip archives and DCP directories take paths, not memory.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path path = base / ("ckconv-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(scratch_dir(), ignored);
    });
    return path;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size()) {
    std::perror(path.c_str());
    std::abort();
  }
  std::fclose(out);
}

}  // namespace ckconv::fuzz
