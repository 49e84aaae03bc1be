#include "pipeline/part_publish.h"

#include <stdio.h>
#include <zlib.h>

#include <cerrno>
#include <map>

#include "core/error.h"
#include "core/file.h"
#include "pipeline/output_directory.h"
#include "pipeline/publish.h"
#include "pipeline/run_leftovers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size() && i < 8; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > 8) text += ", ... (" + std::to_string(items.size()) + " in all)";
  return text;
}

// The markers of every part, checked to tile the plan's blocks; kBadInput otherwise.
std::vector<PartMarker> complete_markers(const PartStaging& staging, const PartPlan& plan) {
  const std::vector<std::string> missing = missing_parts(staging, plan);
  if (!missing.empty())
    fail_input(staging.directory().string() + ": part(s) " + join(missing) + " of " +
               std::to_string(plan.parts) +
               " not complete (run them, or run again those that failed; the others are kept)");
  std::vector<PartMarker> markers;
  uint64_t next_block = 0;
  for (uint32_t i = 0; i < plan.parts; ++i) {
    markers.push_back(*staging.read_marker({i, plan.parts}));
    if (markers.back().first_block != next_block)
      fail_input(staging.directory().string() + ": the blocks of part " +
                 markers.back().part.label() + " do not follow those of the part before");
    next_block = markers.back().end_block;
  }
  if (next_block != plan.blocks)
    fail_input(staging.directory().string() + ": the parts cover " + std::to_string(next_block) +
               " of " + std::to_string(plan.blocks) + " blocks");
  return markers;
}

// Every planned file at its size (files no block touches, of size 0, are created here).
void check_files(const PartStaging& staging, const PartPlan& plan) {
  std::vector<std::string> wrong;
  for (const auto& [name, size] : plan.files) {
    const fs::path path = staging.files() / name;
    std::error_code error;
    if (size == 0 && !fs::exists(path, error)) File::create(path).close();
    const uint64_t found = fs::file_size(path, error);
    if (error || found != size)
      wrong.push_back(name + (error ? " (missing)"
                                    : " (" + std::to_string(found) + " bytes, " +
                                          std::to_string(size) + " planned)"));
  }
  if (!wrong.empty())
    fail_input(staging.directory().string() + ": staged files do not match the plan: " +
               join(wrong) + " (remove the directory and run every part again)");
}

// The zip CRC-32 of each placement combined from the parts' pieces (in block order), written
// at every patch offset and synced.
void patch_crcs(const PartStaging& staging, const PartPlan& plan,
                const std::vector<PartMarker>& markers) {
  if (plan.crc_patches.empty()) return;
  std::vector<uint32_t> crcs;
  for (const PartMarker& marker : markers)
    for (const CrcPart& part : marker.crc_parts) {
      if (part.placement >= crcs.size()) crcs.resize(part.placement + 1, 0);
      crcs[part.placement] = static_cast<uint32_t>(
          crc32_combine(crcs[part.placement], part.crc, static_cast<z_off_t>(part.size_bytes)));
    }
  std::map<uint32_t, File> files;
  for (const Crc32Patch& patch : plan.crc_patches) {
    CKCONV_CHECK(patch.file < plan.files.size());
    auto it = files.find(patch.file);
    if (it == files.end()) {
      File file = File::open_shared_unbuffered(staging.files() / plan.files[patch.file].first);
      file.stop_direct();
      it = files.emplace(patch.file, std::move(file)).first;
    }
    const uint32_t crc = patch.placement < crcs.size() ? crcs[patch.placement] : 0;
    uint8_t bytes[4];
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(crc >> (8 * i));
    it->second.write_at(bytes, 4, patch.offset);
  }
  for (auto& [index, file] : files) {
    file.sync();
    file.close();
  }
}

}  // namespace

std::vector<std::string> missing_parts(const PartStaging& staging, const PartPlan& plan) {
  std::vector<std::string> missing;
  for (uint32_t i = 0; i < plan.parts; ++i) {
    const std::optional<PartMarker> marker = staging.read_marker({i, plan.parts});
    if (!marker || marker->fingerprint != plan.fingerprint)
      missing.push_back(PartSpec{i, plan.parts}.label());
  }
  return missing;
}

PartPublishResult publish_parts(const PartStaging& staging, const fs::path& target, bool replace) {
  staging.read_plan();  // kBadInput before claiming a directory that is not a staging
  if (!staging.claim())
    fail(ErrorKind::kExists, staging.directory().string() + " is being published by " +
                                 staging.claim_holder() +
                                 " (if that run is gone, remove its 'publishing' file)");
  return publish_claimed_parts(staging, target, replace);
}

PartPublishResult publish_claimed_parts(const PartStaging& staging, const fs::path& target,
                                        bool replace) {
  struct ClaimGuard {
    const PartStaging& staging;
    bool keep = false;
    ~ClaimGuard() {
      if (!keep) staging.release_claim();
    }
  } guard{staging};

  const PartPlan plan = staging.read_plan();
  PartPublishResult result;
  result.target = target;
  result.parts = plan.parts;
  result.files = plan.files;
  std::error_code error;
  if (fs::exists(staging.files() / "journal", error)) {
    // A publisher died after its journal: the publish is decided, finish it.
    result.notes.push_back(recover_publish(target, staging.files()));
  } else if (!fs::exists(staging.files(), error) && fs::is_directory(target, error)) {
    // A publisher died after renaming the files into place, before removing the rest.
    result.notes.push_back("the parts in " + staging.directory().string() +
                           " were already published; removed what was left");
  } else {
    const std::vector<PartMarker> markers = complete_markers(staging, plan);
    check_files(staging, plan);
    patch_crcs(staging, plan, markers);
    OutputDirectory output(target, replace, staging.files());
    result.notes = output.cleanup_notes();
    result.replaced = output.publish();
  }
  guard.keep = true;  // removed with the directory
  // Renamed away first, claim and all, so a part finishing at this moment finds either the
  // whole claimed directory or none (publish_if_last), never a half-removed one it could claim.
  const fs::path removing = temporary_sibling(target, "tmp");
  fs::rename(staging.directory(), removing, error);
  fs::remove_all(error ? staging.directory() : removing, error);
  return result;
}

}  // namespace ckconv
