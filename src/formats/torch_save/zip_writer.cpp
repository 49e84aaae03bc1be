// Record layouts per PKWARE APPNOTE 6.3; field values as miniz writes them for PyTorch
// (docs/formats.md "torch.save zip archives", checked against the byte dumps of
// fixtures/formats/*/sd.pt).
#include "formats/torch_save/zip_writer.h"

#include "core/crc32.h"
#include "core/error.h"

namespace ckconv {
namespace {

constexpr uint64_t k32BitLimit = 0xffffffff;  // miniz switches to zip64 at >= this value
constexpr uint16_t kFlags = 0x0808;           // data descriptor follows + UTF-8 names

// Zip's CRC-32 is zlib's (polynomial 0xEDB88320, reflected).
uint32_t zip_crc32(const std::string& bytes) {
  return crc32_update(0, bytes.data(), bytes.size());
}

// Accumulates the archive as literal runs separated by holes (data the executor writes).
class ZipBuilder {
 public:
  uint64_t cursor() const { return cursor_; }
  void put_u16(uint64_t value) { put_le(value, 2); }
  void put_u32(uint64_t value) { put_le(value, 4); }
  void put_u64(uint64_t value) { put_le(value, 8); }
  void put(const std::string& bytes) {
    current().append(bytes);
    cursor_ += bytes.size();
  }
  void hole(uint64_t size) {
    if (size == 0) return;
    cursor_ += size;
    open_ = false;
  }
  std::vector<LiteralBytes> take() { return std::move(literals_); }

 private:
  std::string& current() {
    if (!open_) {
      literals_.push_back(LiteralBytes{cursor_, {}});
      open_ = true;
    }
    return literals_.back().bytes;
  }
  void put_le(uint64_t value, int size) {
    std::string& out = current();
    for (int i = 0; i < size; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    cursor_ += static_cast<uint64_t>(size);
  }
  std::vector<LiteralBytes> literals_;
  uint64_t cursor_ = 0;
  bool open_ = false;
};

struct WrittenEntry {
  uint64_t header_offset = 0;
  uint64_t size_bytes = 0;
  uint32_t crc32 = 0;
};

uint32_t saturate32(uint64_t value) {
  return value >= k32BitLimit ? 0xffffffffu : static_cast<uint32_t>(value);
}

// The zip64 extra field (id 0x0001) of a central directory record: the 64-bit sizes when the
// entry is large, then the 64-bit header offset when that is large; empty when neither is.
void put_central_zip64_extra(ZipBuilder& out, uint64_t size_bytes, uint64_t header_offset) {
  bool large_size = size_bytes >= k32BitLimit;
  bool large_offset = header_offset >= k32BitLimit;
  if (!large_size && !large_offset) return;
  out.put_u16(0x0001);
  out.put_u16((large_size ? 16 : 0) + (large_offset ? 8 : 0));
  if (large_size) {
    out.put_u64(size_bytes);
    out.put_u64(size_bytes);
  }
  if (large_offset) out.put_u64(header_offset);
}

// Local zip64 extra (miniz): uncompressed and compressed size (the latter 0 here, the real
// sizes follow in the descriptor) when the entry is large, then the header offset; empty when
// neither is large.
std::string local_zip64_extra(uint64_t size_bytes, uint64_t header_offset) {
  bool large_size = size_bytes >= k32BitLimit;
  bool large_offset = header_offset >= k32BitLimit;
  if (!large_size && !large_offset) return {};
  ZipBuilder extra;
  extra.put_u16(0x0001);
  extra.put_u16((large_size ? 16 : 0) + (large_offset ? 8 : 0));
  if (large_size) {
    extra.put_u64(size_bytes);
    extra.put_u64(0);
  }
  if (large_offset) extra.put_u64(header_offset);
  return extra.take().front().bytes;
}

// Writes one entry: local header padded so the data starts 64-byte aligned, the data (or a
// hole), then the data descriptor. Records the data offset and the CRC places in `plan`.
WrittenEntry put_local_entry(ZipBuilder& out, const ZipEntrySpec& spec, PlannedZip& plan) {
  CKCONV_CHECK(!spec.content || spec.content->size() == spec.size_bytes);
  CKCONV_CHECK(spec.name.size() < 0xffff);
  WrittenEntry entry{out.cursor(), spec.size_bytes, spec.content ? zip_crc32(*spec.content) : 0};
  std::string zip64_extra = local_zip64_extra(spec.size_bytes, entry.header_offset);
  uint64_t unpadded = entry.header_offset + 30 + spec.name.size() + zip64_extra.size() + 4;
  uint64_t padding = (kTorchSaveAlignment - unpadded % kTorchSaveAlignment) % kTorchSaveAlignment;

  out.put_u32(0x04034b50);
  out.put_u16(0);  // version needed
  out.put_u16(kFlags);
  out.put_u16(0);  // stored
  out.put_u16(0);  // time
  out.put_u16(0);  // date
  out.put_u32(0);  // crc, sizes: in the data descriptor
  out.put_u32(0);
  out.put_u32(0);
  out.put_u16(spec.name.size());
  out.put_u16(zip64_extra.size() + 4 + padding);
  out.put(spec.name);
  out.put(zip64_extra);
  out.put_u16(0x4246);  // "FB"
  out.put_u16(padding);
  out.put(std::string(padding, 'Z'));

  plan.data_offsets.push_back(out.cursor());
  if (spec.content)
    out.put(*spec.content);
  else
    out.hole(spec.size_bytes);

  std::vector<uint64_t> crc_offsets;
  out.put_u32(0x08074b50);
  if (!spec.content) crc_offsets.push_back(out.cursor());
  out.put_u32(entry.crc32);
  if (zip64_extra.empty()) {
    out.put_u32(spec.size_bytes);
    out.put_u32(spec.size_bytes);
  } else {
    out.put_u64(spec.size_bytes);
    out.put_u64(spec.size_bytes);
  }
  plan.crc_offsets.push_back(std::move(crc_offsets));
  return entry;
}

// Writes one central directory record; appends its CRC place to `crc_offsets` when the CRC is
// patched later (entries without content).
void put_central_record(ZipBuilder& out, const ZipEntrySpec& spec, const WrittenEntry& entry,
                        std::vector<uint64_t>& crc_offsets) {
  bool large_size = entry.size_bytes >= k32BitLimit;
  bool large_offset = entry.header_offset >= k32BitLimit;
  out.put_u32(0x02014b50);
  out.put_u16(0);  // made by
  out.put_u16(0);  // needed
  out.put_u16(kFlags);
  out.put_u16(0);
  out.put_u16(0);
  out.put_u16(0);
  if (!spec.content) crc_offsets.push_back(out.cursor());
  out.put_u32(entry.crc32);
  out.put_u32(saturate32(entry.size_bytes));
  out.put_u32(saturate32(entry.size_bytes));
  out.put_u16(spec.name.size());
  out.put_u16(large_size || large_offset ? 4 + (large_size ? 16 : 0) + (large_offset ? 8 : 0) : 0);
  out.put_u16(0);  // comment
  out.put_u16(0);  // disk
  out.put_u16(0);  // internal attributes
  out.put_u32(0);  // external attributes
  out.put_u32(saturate32(entry.header_offset));
  out.put(spec.name);
  put_central_zip64_extra(out, entry.size_bytes, entry.header_offset);
}

// The zip64 end record, its locator and the classic end record, which miniz always writes.
void put_end_records(ZipBuilder& out, uint64_t entry_count, uint64_t directory_offset,
                     uint64_t directory_size) {
  uint64_t zip64_end_offset = out.cursor();
  out.put_u32(0x06064b50);
  out.put_u64(44);      // size of the rest of this record
  out.put_u16(0x031e);  // made by: Unix, 3.0 (miniz)
  out.put_u16(45);      // needed: zip64
  out.put_u32(0);
  out.put_u32(0);
  out.put_u64(entry_count);
  out.put_u64(entry_count);
  out.put_u64(directory_size);
  out.put_u64(directory_offset);

  out.put_u32(0x07064b50);
  out.put_u32(0);
  out.put_u64(zip64_end_offset);
  out.put_u32(1);  // total disks

  uint64_t count16 = entry_count >= 0xffff ? 0xffff : entry_count;
  out.put_u32(0x06054b50);
  out.put_u16(0);
  out.put_u16(0);
  out.put_u16(count16);
  out.put_u16(count16);
  out.put_u32(saturate32(directory_size));
  out.put_u32(saturate32(directory_offset));
  out.put_u16(0);  // comment
}

}  // namespace

PlannedZip plan_stored_zip(const std::vector<ZipEntrySpec>& entries) {
  PlannedZip plan;
  ZipBuilder out;
  std::vector<WrittenEntry> written;
  for (const ZipEntrySpec& spec : entries) written.push_back(put_local_entry(out, spec, plan));

  uint64_t directory_offset = out.cursor();
  for (size_t i = 0; i < entries.size(); ++i)
    put_central_record(out, entries[i], written[i], plan.crc_offsets[i]);
  uint64_t directory_size = out.cursor() - directory_offset;
  put_end_records(out, entries.size(), directory_offset, directory_size);

  plan.size_bytes = out.cursor();
  plan.literals = out.take();
  return plan;
}

}  // namespace ckconv
