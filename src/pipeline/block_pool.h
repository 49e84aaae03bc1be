// The block pool: the worker threads and reused buffers that build blocks and then finish
// them (write or compare), bounding both the blocks built at once and the blocks in flight.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "core/file.h"
#include "pipeline/block_builder.h"
#include "pipeline/executor.h"

namespace ckconv {

// Builds block `index` into `buffer` (block_bytes long), using `staging` (2 x block_bytes).
using BuildBlock =
    std::function<void(size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging)>;
// Finishes block `index` (writes or compares the bytes build left in `buffer`).
using FinishBlock = std::function<void(size_t index, const AlignedBuffer& buffer)>;

// Runs build(index, ...) then finish(index, ...) for every block, each block once, on up to
// options.threads + options.writes_in_flight workers (the calling thread is one of them).
// Each worker owns one reused block buffer; at most options.threads workers build at once
// (reading sources and copying: the CPU part), each with one of options.threads staging
// buffers, while the others wait on their finish (the block's write or read). Calls
// options.progress(bytes done, bytes total) now and then and once at the end. After a
// failure no new block is started; the first exception is rethrown once all workers stop.
// Blocks start in `order` (a permutation of the block indices) when it is given, else in
// index order.
void for_each_block(const std::vector<Block>& blocks, uint64_t block_bytes,
                    const ExecuteOptions& options, const BuildBlock& build,
                    const FinishBlock& finish, const std::vector<size_t>& order = {});

}  // namespace ckconv
