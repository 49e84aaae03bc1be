#include "formats/checkpoint_reader.h"

#include <fstream>

#include "core/error.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/torch_save/torch_save_reader.h"

namespace ckconv {

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
    fail_input(path.string() +
               ": directory holds no DCP checkpoint (.metadata), no safetensors files and not "
               "exactly one torch.save (.pt) file");
  }
  if (!std::filesystem::exists(path, error))
    fail_input(path.string() + ": no such file or directory");
  std::ifstream stream(path, std::ios::binary);
  char magic[4] = {};
  stream.read(magic, 4);
  if (stream.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
    return CheckpointFormat::kTorchSave;
  return CheckpointFormat::kSafetensors;
}

Catalog read_checkpoint(const std::filesystem::path& path) {
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

}  // namespace ckconv
