// The fuzz targets of the replay program (replay_main.cpp): CMakeLists.txt generates their
// table, compiling every tests/fuzz/*_fuzz.cpp with its LLVMFuzzerTestOneInput renamed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ckconv::fuzz {

struct ReplayTarget {
  const char* name;  // the source's file name without .cpp, e.g. "zip_fuzz"
  int (*test_one_input)(const uint8_t* data, size_t size);
};

const std::vector<ReplayTarget>& replay_targets();

}  // namespace ckconv::fuzz
