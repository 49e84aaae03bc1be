#include "formats/checkpoint_reader.h"

#include <fstream>

#include "core/error.h"
#include "formats/safetensors/safetensors_reader.h"

namespace ckconv {

std::string detect_checkpoint_format(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    if (std::filesystem::exists(path / ".metadata", error)) return "dcp";
    if (std::filesystem::exists(path / "model.safetensors.index.json", error)) return "safetensors";
    for (const auto& entry : std::filesystem::directory_iterator(path, error))
      if (entry.path().extension() == ".safetensors") return "safetensors";
    fail_input(path.string() + ": directory holds neither a DCP checkpoint (.metadata) nor safetensors files");
  }
  if (!std::filesystem::exists(path, error)) fail_input(path.string() + ": no such file or directory");
  std::ifstream stream(path, std::ios::binary);
  char magic[4] = {};
  stream.read(magic, 4);
  if (stream.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
    return "torch_save";
  return "safetensors";
}

Catalog read_checkpoint(const std::filesystem::path& path) {
  const std::string format = detect_checkpoint_format(path);
  if (format == "safetensors") return read_safetensors(path);
  fail_input(path.string() + ": " + format + " checkpoints are not supported by this build yet");
}

}  // namespace ckconv
