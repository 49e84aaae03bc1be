#include "cli/part_option.h"

#include <charconv>
#include <optional>

#include "core/error.h"

namespace ckconv::cli {
namespace {

std::optional<uint64_t> parse_count(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// The variable's value as a non-negative integer; nothing when unset, kUsage when malformed.
std::optional<uint64_t> variable(const EnvironmentLookup& environment, const char* name) {
  const char* text = environment(name);
  if (text == nullptr) return std::nullopt;
  const std::optional<uint64_t> value = parse_count(text);
  if (!value)
    fail(ErrorKind::kUsage, std::string("--part: ") + name + "=" + text + " is not a number");
  return value;
}

PartSpec checked(uint64_t index, uint64_t count, const std::string& source) {
  if (count == 0 || count > kMaxParts)
    fail(ErrorKind::kUsage,
         "--part: " + source + ": the number of parts must be 1 to " + std::to_string(kMaxParts));
  if (index >= count)
    fail(ErrorKind::kUsage, "--part: " + source + ": part " + std::to_string(index + 1) +
                                " is beyond " + std::to_string(count) + " parts");
  return PartSpec{static_cast<uint32_t>(index), static_cast<uint32_t>(count)};
}

bool torchrun_set(const EnvironmentLookup& environment) {
  return environment("RANK") != nullptr || environment("WORLD_SIZE") != nullptr;
}

bool slurm_array_set(const EnvironmentLookup& environment) {
  return environment("SLURM_ARRAY_TASK_ID") != nullptr;
}

PartSpec from_torchrun(const EnvironmentLookup& environment) {
  const auto rank = variable(environment, "RANK");
  const auto world = variable(environment, "WORLD_SIZE");
  if (!rank || !world)
    fail(ErrorKind::kUsage, "--part torchrun: RANK and WORLD_SIZE must both be set (by torchrun)");
  return checked(*rank, *world,
                 "RANK=" + std::to_string(*rank) + " WORLD_SIZE=" + std::to_string(*world));
}

PartSpec from_slurm(const EnvironmentLookup& environment) {
  const auto id = variable(environment, "SLURM_ARRAY_TASK_ID");
  const auto count = variable(environment, "SLURM_ARRAY_TASK_COUNT");
  if (!id || !count)
    fail(ErrorKind::kUsage,
         "--part slurm: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT must be set (sbatch "
         "--array sets them)");
  const uint64_t min = variable(environment, "SLURM_ARRAY_TASK_MIN").value_or(0);
  const uint64_t step = variable(environment, "SLURM_ARRAY_TASK_STEP").value_or(1);
  const std::string source = "SLURM_ARRAY_TASK_ID=" + std::to_string(*id) +
                             " SLURM_ARRAY_TASK_MIN=" + std::to_string(min) +
                             " SLURM_ARRAY_TASK_STEP=" + std::to_string(step) +
                             " SLURM_ARRAY_TASK_COUNT=" + std::to_string(*count);
  if (step == 0 || *id < min || (*id - min) % step != 0)
    fail(ErrorKind::kUsage, "--part slurm: " + source + " is not a task of the array");
  return checked((*id - min) / step, *count, source);
}

}  // namespace

PartSpec parse_part_option(const std::string& text, const EnvironmentLookup& environment) {
  if (text == "torchrun") return from_torchrun(environment);
  if (text == "slurm") return from_slurm(environment);
  if (text == "auto") {
    const bool torchrun = torchrun_set(environment), slurm = slurm_array_set(environment);
    if (torchrun && slurm)
      fail(ErrorKind::kUsage,
           "--part auto: both torchrun's RANK/WORLD_SIZE and a Slurm array's "
           "SLURM_ARRAY_TASK_ID are set; say which splits the work: --part torchrun or "
           "--part slurm");
    if (torchrun) return from_torchrun(environment);
    if (slurm) return from_slurm(environment);
    fail(ErrorKind::kUsage,
         "--part auto: neither torchrun's RANK/WORLD_SIZE nor a Slurm array's "
         "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT is set; give --part I/N");
  }
  const size_t slash = text.find('/');
  const auto index = parse_count(text.substr(0, slash));
  const auto count =
      slash == std::string::npos ? std::nullopt : parse_count(text.substr(slash + 1));
  if (!index || !count || *index == 0)
    fail(ErrorKind::kUsage, "--part " + text +
                                ": expected I/N with 1 <= I <= N (e.g. 2/4), auto, torchrun or "
                                "slurm");
  return checked(*index - 1, *count, text);
}

}  // namespace ckconv::cli
