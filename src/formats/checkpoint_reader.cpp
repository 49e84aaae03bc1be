#include "formats/checkpoint_reader.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/torch_save/torch_save_reader.h"
#include "formats/training_state.h"

namespace ckconv {
namespace {

// torchtitan's checkpoint folder holds one DCP directory per saved step ("step-100"); the
// step numbers found in `directory`, ascending.
std::vector<long long> saved_steps(const std::filesystem::path& directory) {
  std::vector<long long> steps;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.size() == 5 || name.size() > 20 ||
        !std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !std::filesystem::exists(entry.path() / ".metadata", error))
      continue;
    steps.push_back(std::stoll(name.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// Fails naming the steps when `directory` (or its checkpoint/ folder) is a torchtitan dump.
void refuse_dump_folder(const std::filesystem::path& directory) {
  std::error_code error;
  for (const std::filesystem::path& folder : {directory, directory / "checkpoint"}) {
    if (!std::filesystem::is_directory(folder, error)) continue;
    const std::vector<long long> steps = saved_steps(folder);
    if (steps.empty()) continue;
    std::string names;
    for (long long step : steps)
      names += (names.empty() ? "" : ", ") + ("step-" + std::to_string(step));
    fail_input(directory.string() + ": a torchtitan checkpoint folder holding " + names +
               "; give one step, e.g. the latest: " +
               (folder / ("step-" + std::to_string(steps.back()))).string());
  }
}

// Whether the first bytes of a file are text (a README, a JSON or YAML file) rather than a
// binary checkpoint: a safetensors file starts with an 8-byte little-endian length, whose
// high bytes are zero.
bool looks_like_text(const std::string& head) {
  if (head.size() < 8) return false;
  return std::all_of(head.begin(), head.end(), [](char c) {
    const unsigned char byte = static_cast<unsigned char>(c);
    return (byte >= 0x20 && byte < 0x7f) || byte == '\n' || byte == '\r' || byte == '\t';
  });
}

// Fails naming what a file that is no checkpoint is: the .metadata of a DCP directory, the
// index or config.json of an HF folder, another text file.
void refuse_non_checkpoint_file(const std::filesystem::path& path, const std::string& head) {
  const std::string name = path.filename().string();
  const std::string folder = path.parent_path().empty() ? "." : path.parent_path().string();
  if (name == ".metadata")
    fail_input(path.string() +
               " is the .metadata file of a DCP checkpoint; give its directory: " + folder);
  if (name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0)
    fail_input(path.string() +
               " is the index of a sharded safetensors checkpoint; give its folder: " + folder);
  if (name == "config.json")
    fail_input(path.string() +
               " is a transformers config.json, not a checkpoint; give its folder (" + folder +
               ") or pass it as --hf-config");
  if (looks_like_text(head))
    fail_input(path.string() + " is a text file (" + (name.empty() ? "?" : name) +
               "), not a checkpoint");
}

}  // namespace

CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    if (std::filesystem::exists(path / ".metadata", error)) return CheckpointFormat::kDcp;
    if (std::filesystem::exists(path / "model.safetensors.index.json", error))
      return CheckpointFormat::kSafetensors;
    int torch_files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(path, error)) {
      if (entry.path().extension() == ".safetensors") return CheckpointFormat::kSafetensors;
      if (entry.path().extension() == ".pt" || entry.path().extension() == ".pth") ++torch_files;
    }
    if (torch_files == 1) return CheckpointFormat::kTorchSave;
    refuse_dump_folder(path);
    fail_input(path.string() +
               ": directory holds no DCP checkpoint (.metadata), no safetensors files and not "
               "exactly one torch.save (.pt) file");
  }
  if (!std::filesystem::exists(path, error))
    fail_input(path.string() + ": no such file or directory");
  std::ifstream stream(path, std::ios::binary);
  std::string head(64, '\0');
  stream.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(stream.gcount()));
  if (head.size() >= 4 && head.compare(0, 4, "PK\x03\x04") == 0)
    return CheckpointFormat::kTorchSave;
  refuse_non_checkpoint_file(path, head);
  return CheckpointFormat::kSafetensors;
}

namespace {

Catalog read_by_format(const std::filesystem::path& path) {
  const CheckpointFormat format = detect_checkpoint_format(path);
  if (format == CheckpointFormat::kSafetensors) return read_safetensors(path);
  if (format == CheckpointFormat::kDcp) return read_dcp(path);
  if (std::filesystem::is_directory(path)) {
    for (const auto& entry : std::filesystem::directory_iterator(path))
      if (entry.path().extension() == ".pt" || entry.path().extension() == ".pth")
        return read_torch_save(entry.path());
  }
  return read_torch_save(path);
}

}  // namespace

Catalog read_checkpoint(const std::filesystem::path& path) {
  Catalog catalog = read_by_format(path);
  strip_model_group(catalog);
  return catalog;
}

}  // namespace ckconv
