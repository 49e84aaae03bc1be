#include "verify/written_ranges.h"

#include <algorithm>

#include "core/error.h"

namespace ckconv {
namespace {

std::filesystem::path normal_path(const std::filesystem::path& path) {
  return std::filesystem::absolute(path).lexically_normal();
}

}  // namespace

WrittenRanges::WrittenRanges(const std::filesystem::path& directory)
    : directory_(normal_path(directory)) {}

void WrittenRanges::begin(const FilePlan& file_plan) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t order = 1;  // 0 is for files the writer does not write
  for (uint32_t f = 0; f < file_plan.files.size(); ++f) {
    const PlannedFile& file = file_plan.files[f];
    files_[normal_path(directory_ / file.relative_path)] = f;
    sizes_.push_back(file.size_bytes);
    first_byte_order_.push_back(order);
    order += file.size_bytes;
    for (const LiteralBytes& literal : file.literals)
      if (!literal.bytes.empty())
        literals_.push_back({f, {literal.offset, literal.offset + literal.bytes.size()}});
  }
  written_.resize(file_plan.files.size());
  has_crc_patches_ = !file_plan.crc_patches.empty();
  begun_ = true;
  changed_.notify_all();
}

void WrittenRanges::written(uint32_t file, uint64_t offset, uint64_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<uint64_t, uint64_t>& ranges = written_.at(file);
  uint64_t begin = offset;
  uint64_t end = offset + size;
  // Merge with the ranges that touch [begin, end).
  auto it = ranges.upper_bound(begin);
  if (it != ranges.begin() && std::prev(it)->second >= begin) --it;
  while (it != ranges.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = ranges.erase(it);
  }
  ranges[begin] = end;
  changed_.notify_all();
}

void WrittenRanges::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

void WrittenRanges::fail() {
  std::lock_guard<std::mutex> lock(mutex_);
  failed_ = true;
  changed_.notify_all();
}

bool WrittenRanges::covered(uint32_t file, uint64_t begin, uint64_t end) const {
  end = std::min(end, sizes_[file]);
  if (begin >= end) return true;
  const std::map<uint64_t, uint64_t>& ranges = written_[file];
  auto it = ranges.upper_bound(begin);
  if (it == ranges.begin()) return false;
  return std::prev(it)->second >= end;
}

bool WrittenRanges::wait_for_headers() const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return begun_ || finished_ || failed_; });
  if (failed_ || !begun_ || has_crc_patches_) return false;
  changed_.wait(lock, [&] {
    return finished_ || failed_ || std::all_of(literals_.begin(), literals_.end(), [&](auto& l) {
             return covered(l.first, l.second.first, l.second.second);
           });
  });
  return !failed_;
}

int64_t WrittenRanges::file_index(const std::filesystem::path& path) const {
  auto found = files_.find(normal_path(path));
  return found == files_.end() ? int64_t{-1} : int64_t{found->second};
}

void WrittenRanges::wait_written(const std::filesystem::path& path, uint64_t offset,
                                 uint64_t size) const {
  std::unique_lock<std::mutex> lock(mutex_);
  const int64_t file = file_index(path);
  if (file < 0) return;
  changed_.wait(lock, [&] {
    return finished_ || failed_ || covered(static_cast<uint32_t>(file), offset, offset + size);
  });
  if (failed_ && !finished_)
    ckconv::fail(ErrorKind::kInternal, "the conversion writing '" + path.string() + "' stopped");
}

uint64_t WrittenRanges::write_order(const std::filesystem::path& path, uint64_t offset) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t file = file_index(path);
  return file < 0 ? 0 : first_byte_order_[file] + offset;
}

}  // namespace ckconv
