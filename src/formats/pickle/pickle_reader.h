// A restricted pickle reader: decodes the binary opcodes of protocols 2-5 (docs/formats.md "The
// restricted pickle reader") into an inert PickleDocument. It never imports, calls or resolves
// anything; GLOBAL names are checked against an allow-list of the classes and functions torch.save
// and torch.distributed.checkpoint pickles use, and any other global (os.system, builtins.eval,
// subprocess.Popen, ...) is refused with an error naming it.
//
// Untrusted input cannot crash the reader or make it allocate without bound: every length is
// checked against the remaining input before anything is allocated, and the stack, mark
// stack, memo and containers have the named limits below. Every failure is a kBadInput Error
// whose message starts with the `source` name and the byte position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/pickle/pickle_value.h"

namespace ckconv {

// Limits far above what real checkpoints need (a 1 T-parameter FSDP checkpoint's .metadata has
// a few million values) and far below what would exhaust memory.
inline constexpr size_t kMaxPickleBytes = size_t{1} << 31;           // whole pickle
inline constexpr size_t kMaxPickleStackSize = size_t{1} << 22;       // values on the stack
inline constexpr size_t kMaxPickleMarkDepth = 4096;                  // nested MARKs
inline constexpr size_t kMaxPickleMemoEntries = size_t{1} << 24;     // memo slots in use
inline constexpr size_t kMaxPickleContainerItems = size_t{1} << 24;  // items of one list/dict/set
inline constexpr size_t kMaxPickleStringBytes = size_t{1} << 30;     // one str/bytes value
inline constexpr size_t kMaxPickleBigIntBytes = 4096;                // one LONG1/LONG4 integer
// Values decoded from one pickle (popped ones included: they stay owned by the document).
// Each costs ~170 bytes, so this bounds a hostile pickle to ~6 GB however it is built; real
// metadata stays far below (the memo limit above already caps memoized objects at 2^24).
inline constexpr size_t kMaxPickleValues = size_t{1} << 25;
// Callers that walk a PickleDocument recursively (values may nest arbitrarily deep through the
// memo, or even form cycles) stop at this depth.
inline constexpr int kMaxPickleNestingDepth = 64;

// Decodes one pickle ending in STOP. Trailing bytes after STOP are refused.
// `max_values` exists for tests; callers keep the default.
PickleDocument read_pickle(std::string_view bytes, const std::string& source,
                           size_t max_values = kMaxPickleValues);

// Whether `module`.`name` is a global read_pickle accepts.
bool is_allowed_pickle_global(std::string_view module, std::string_view name);

}  // namespace ckconv
