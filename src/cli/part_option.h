// `--part`: which share of a conversion split across processes this process writes
// (pipeline/part_writer.h). Only the option opts in: the environment variables of launchers
// are read when it names them, so a RANK or SLURM_* variable set for other reasons never
// changes what a plain conversion does.
//   --part I/N      part I (1 <= I <= N) of N, N <= kMaxParts
//   --part torchrun RANK (0-based) of WORLD_SIZE, as torchrun sets them
//   --part slurm    the task of a Slurm job array: (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)
//                   / SLURM_ARRAY_TASK_STEP (step 1 when unset) of SLURM_ARRAY_TASK_COUNT
//   --part auto     torchrun's variables when set, else the Slurm array's; refused when both
//                   or neither are set (torchrun inside an array job is ambiguous: say which)
#pragma once

#include <functional>
#include <string>

#include "pipeline/part_staging.h"

namespace ckconv::cli {

// Reads an environment variable (nullptr when unset); std::getenv in the program.
using EnvironmentLookup = std::function<const char*(const char*)>;

// Throws kUsage naming the spelling or the variable that is missing or malformed.
PartSpec parse_part_option(const std::string& text, const EnvironmentLookup& environment);

}  // namespace ckconv::cli
