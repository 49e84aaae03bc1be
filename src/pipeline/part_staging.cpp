#include "pipeline/part_staging.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/file.h"
#include "pipeline/publish.h"
#include "pipeline/run_leftovers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSuffix = ".ckconv-parts";
constexpr uint64_t kMaxRecordBytes = uint64_t{1} << 30;

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

// A name no other process writing into the same directory uses, even on another host.
std::string private_name(const std::string& base) {
  return base + ".tmp-" + host_name() + "-" + std::to_string(::getpid());
}

// Writes `text` to `directory/private`, synced; returns the path.
fs::path write_synced(const fs::path& directory, const std::string& base, const std::string& text) {
  const fs::path path = directory / private_name(base);
  File file = File::create(path);
  file.write_at(text.data(), text.size(), 0);
  file.sync();
  file.close();
  return path;
}

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

nlohmann::json plan_json(const PartPlan& plan) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [path, size] : plan.files) files.push_back({{"path", path}, {"size", size}});
  nlohmann::json patches = nlohmann::json::array();
  for (const Crc32Patch& patch : plan.crc_patches)
    patches.push_back({patch.placement, patch.file, patch.offset});
  return {{"format", "ckconv parts 1"},
          {"fingerprint", plan.fingerprint},
          {"parts", plan.parts},
          {"blocks", plan.blocks},
          {"files", files},
          {"crc_patches", patches}};
}

PartPlan plan_from_json(const nlohmann::json& json) {
  if (json.at("format") != "ckconv parts 1") throw std::runtime_error("unknown format");
  PartPlan plan;
  plan.fingerprint = json.at("fingerprint").get<std::string>();
  plan.parts = json.at("parts").get<uint32_t>();
  plan.blocks = json.at("blocks").get<uint64_t>();
  for (const auto& file : json.at("files"))
    plan.files.push_back({file.at("path").get<std::string>(), file.at("size").get<uint64_t>()});
  for (const auto& patch : json.at("crc_patches"))
    plan.crc_patches.push_back(Crc32Patch{patch.at(0).get<size_t>(), patch.at(1).get<uint32_t>(),
                                          patch.at(2).get<uint64_t>()});
  return plan;
}

void append_number(std::string& out, uint64_t value) {
  out += std::to_string(value);
  out += ';';
}

}  // namespace

std::string PartSpec::label() const {
  return std::to_string(index + 1) + "/" + std::to_string(count);
}

fs::path part_staging_path(const fs::path& target) {
  fs::path absolute = fs::absolute(target).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  return absolute.parent_path() / ("." + absolute.filename().string() + kSuffix);
}

std::optional<fs::path> part_staging_target(const fs::path& staging) {
  fs::path absolute = fs::absolute(staging).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  static const std::regex pattern(R"(\.(.+)\.ckconv-parts)");
  std::smatch match;
  const std::string name = absolute.filename().string();
  if (!std::regex_match(name, match, pattern)) return std::nullopt;
  return absolute.parent_path() / match[1].str();
}

PartPlan make_part_plan(const FilePlan& file_plan, uint64_t block_bytes, uint64_t blocks,
                        uint32_t parts) {
  std::string text;
  append_number(text, block_bytes);
  for (const PlannedFile& file : file_plan.files) {
    text += file.relative_path + ';';
    append_number(text, file.size_bytes);
    for (const LiteralBytes& literal : file.literals) {
      append_number(text, literal.offset);
      append_number(text, literal.bytes.size());
      text += literal.bytes;
    }
  }
  for (const TensorPlacement& placement : file_plan.placements) {
    append_number(text, placement.tensor);
    append_number(text, placement.file);
    append_number(text, placement.byte_offset);
  }
  PartPlan plan;
  for (const Crc32Patch& patch : file_plan.crc_patches) {
    append_number(text, patch.placement);
    append_number(text, patch.file);
    append_number(text, patch.offset);
    plan.crc_patches.push_back(patch);
  }
  plan.fingerprint = hex64(XXH64(text.data(), text.size(), 0));
  plan.parts = parts;
  plan.blocks = blocks;
  for (const PlannedFile& file : file_plan.files)
    plan.files.push_back({file.relative_path, file.size_bytes});
  return plan;
}

void PartStaging::adopt(const PartPlan& plan) const {
  std::error_code error;
  fs::create_directories(directory_ / "done", error);
  if (!error) fs::create_directories(files(), error);
  if (error) fail(ErrorKind::kIo, "cannot create " + directory_.string() + ": " + error.message());
  const fs::path mine = write_synced(directory_, "plan", plan_json(plan).dump(1) + "\n");
  // link() creates "plan" only if absent, with its content complete: the first part
  // records the plan, the others compare theirs with it.
  const bool created = ::link(mine.c_str(), (directory_ / "plan").c_str()) == 0;
  const int link_error = errno;
  fs::remove(mine, error);
  if (created) {
    sync_directory(directory_);
    return;
  }
  if (link_error != EEXIST)
    fail(ErrorKind::kIo,
         "cannot create " + (directory_ / "plan").string() + ": " + errno_message(link_error));
  const PartPlan recorded = read_plan();
  if (recorded.fingerprint != plan.fingerprint || recorded.parts != plan.parts)
    fail(ErrorKind::kUsage,
         directory_.string() + " holds parts of another conversion (" +
             std::to_string(recorded.parts) + " parts, plan " + recorded.fingerprint +
             "; this one: " + std::to_string(plan.parts) + " parts, plan " + plan.fingerprint +
             "): run every part with the same input, options and number of parts, or remove " +
             "that directory to start over");
}

PartPlan PartStaging::read_plan() const {
  const fs::path path = directory_ / "plan";
  std::error_code error;
  if (!fs::exists(path, error))
    fail_input(directory_.string() + " is not a ckconv parts staging directory (no plan)");
  try {
    return plan_from_json(nlohmann::json::parse(read_small_file(path, kMaxRecordBytes)));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail_input("unreadable " + path.string() + ": " + e.what());
  }
}

fs::path PartStaging::marker_path(PartSpec part) const {
  char name[64];
  std::snprintf(name, sizeof(name), "part-%05u-of-%05u", part.index + 1, part.count);
  return directory_ / "done" / name;
}

void PartStaging::write_marker(const PartMarker& marker) const {
  nlohmann::json crcs = nlohmann::json::array();
  for (const CrcPart& part : marker.crc_parts)
    crcs.push_back({part.placement, part.crc, part.size_bytes});
  const nlohmann::json json = {{"fingerprint", marker.fingerprint},
                               {"part", marker.part.index + 1},
                               {"parts", marker.part.count},
                               {"first_block", marker.first_block},
                               {"end_block", marker.end_block},
                               {"crc_parts", crcs},
                               {"host", host_name()},
                               {"pid", ::getpid()}};
  const fs::path done = directory_ / "done";
  const fs::path path = write_synced(done, "part", json.dump() + "\n");
  if (::rename(path.c_str(), marker_path(marker.part).c_str()) != 0)
    fail(ErrorKind::kIo, "cannot rename " + path.string() + ": " + errno_message(errno));
  sync_directory(done);
}

void PartStaging::remove_marker(PartSpec part) const {
  std::error_code error;
  if (fs::remove(marker_path(part), error)) sync_directory(directory_ / "done");
}

std::optional<PartMarker> PartStaging::read_marker(PartSpec part) const {
  std::error_code error;
  const fs::path path = marker_path(part);
  if (!fs::exists(path, error)) return std::nullopt;
  try {
    const auto json = nlohmann::json::parse(read_small_file(path, kMaxRecordBytes));
    PartMarker marker;
    marker.fingerprint = json.at("fingerprint").get<std::string>();
    marker.part = {json.at("part").get<uint32_t>() - 1, json.at("parts").get<uint32_t>()};
    marker.first_block = json.at("first_block").get<uint64_t>();
    marker.end_block = json.at("end_block").get<uint64_t>();
    for (const auto& crc : json.at("crc_parts"))
      marker.crc_parts.push_back(
          {crc.at(0).get<size_t>(), crc.at(1).get<uint32_t>(), crc.at(2).get<uint64_t>()});
    if (marker.part.index != part.index || marker.part.count != part.count) return std::nullopt;
    return marker;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

uint32_t PartStaging::markers_present(uint32_t count) const {
  uint32_t present = 0;
  std::error_code error;
  for (uint32_t i = 0; i < count; ++i)
    if (fs::exists(marker_path({i, count}), error)) ++present;
  return present;
}

bool PartStaging::claim() const {
  const fs::path path = directory_ / "publishing";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const std::string text = host_name() + " " + std::to_string(::getpid()) + "\n";
      const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
      ::close(fd);
      if (!written) fail(ErrorKind::kIo, "cannot write " + path.string());
      return true;
    }
    if (errno == ENOENT) return false;  // published by another part and removed
    if (errno != EEXIST)
      fail(ErrorKind::kIo, "cannot create " + path.string() + ": " + errno_message(errno));
    // Only a claim from this host can be known dead: take it over once.
    const std::string holder = claim_holder();
    if (holder.empty()) continue;  // released meanwhile
    char host[256] = {};
    long pid = 0;
    if (std::sscanf(holder.c_str(), "host %255s pid %ld", host, &pid) != 2 || host != host_name() ||
        !process_is_gone(static_cast<pid_t>(pid)))
      return false;
    std::error_code error;
    fs::remove(path, error);
  }
  return false;
}

void PartStaging::release_claim() const {
  std::error_code error;
  fs::remove(directory_ / "publishing", error);
}

std::string PartStaging::claim_holder() const {
  std::error_code error;
  const fs::path path = directory_ / "publishing";
  if (!fs::exists(path, error)) return "";
  std::string text;
  try {
    text = read_small_file(path, 4096);
  } catch (const Error&) {
    return "";
  }
  char host[256] = {};
  long pid = 0;
  if (std::sscanf(text.c_str(), "%255s %ld", host, &pid) != 2) return "unknown";
  return std::string("host ") + host + " pid " + std::to_string(pid);
}

}  // namespace ckconv
