#include "db/loader_run.h"

#include <algorithm>
#include <cstring>

#include "util/checksum.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr char kRunPrefix[] = "loader-";
constexpr char kRunSuffix[] = ".run";
constexpr size_t kBlockHeadBytes = 8;  // payload length, record count
constexpr size_t kBlockTailBytes = 4;  // checksum

}  // namespace

Status DuplicateKeyError(std::string_view key) {
  return Status::AlreadyExists(
      StrCat("key \"", EscapeBytes(key), "\" was added to the loader more than once"));
}

std::string LoaderRunFileName(uint64_t table_id, uint64_t n) {
  return StrCat(kRunPrefix, table_id, "-", n, kRunSuffix);
}

bool IsLoaderRunFileName(std::string_view name) {
  const std::string_view prefix = kRunPrefix;
  const std::string_view suffix = kRunSuffix;
  if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
      name.substr(name.size() - suffix.size()) != suffix) {
    return false;
  }
  std::string_view middle = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  size_t dash = middle.find('-');
  return dash != std::string_view::npos && AllDigits(middle.substr(0, dash)) &&
         AllDigits(middle.substr(dash + 1));
}

// ---- RunBuffer -----------------------------------------------------------------

void RunBuffer::Add(std::string_view key, std::string_view value) {
  Row row{arena_.size(),
          static_cast<uint32_t>(key.size()),
          static_cast<uint32_t>(value.size()),
          {0, 0}};
  for (size_t i = 0; i < 16 && i < key.size(); ++i) {
    row.prefix[i / 8] |= uint64_t{static_cast<uint8_t>(key[i])} << (56 - 8 * (i % 8));
  }
  rows_.push_back(row);
  arena_.append(key);
  arena_.append(value);
}

void RunBuffer::Sort(const Comparator& cmp) {
  const char* base = arena_.data();
  auto key_of = [base](const Row& r) { return std::string_view(base + r.offset, r.key_size); };
  if (&cmp == BytewiseComparator()) {
    // Equal prefixes leave the order to the whole keys (they may differ past 16 bytes or in
    // length, as "a" and "a\0" do).
    std::sort(rows_.begin(), rows_.end(), [&](const Row& a, const Row& b) {
      if (a.prefix[0] != b.prefix[0]) return a.prefix[0] < b.prefix[0];
      if (a.prefix[1] != b.prefix[1]) return a.prefix[1] < b.prefix[1];
      return key_of(a) < key_of(b);
    });
    return;
  }
  std::sort(rows_.begin(), rows_.end(),
            [&](const Row& a, const Row& b) { return cmp.Compare(key_of(a), key_of(b)) < 0; });
}

bool RunBuffer::FindDuplicate(const Comparator& cmp, std::string_view* key_out) const {
  for (size_t i = 1; i < rows_.size(); ++i) {
    if (cmp.Compare(key(i - 1), key(i)) == 0) {
      *key_out = key(i);
      return true;
    }
  }
  return false;
}

void RunBuffer::Clear() {
  arena_.clear();
  rows_.clear();
}

void RunBuffer::Release() {
  std::string().swap(arena_);
  std::vector<Row>().swap(rows_);
}

// ---- RunWriter -----------------------------------------------------------------

Status RunWriter::Create(const std::string& path, std::unique_ptr<RunWriter>* out) {
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(File::Open(path, File::Mode::kCreateTruncate, &file));
  std::string head(kRunFileMagic, sizeof(kRunFileMagic));
  PutFixed32(&head, kRunFileFormatVersion);
  PutFixed32(&head, 0);
  FERN_RETURN_IF_ERROR(file->Write(0, head));
  out->reset(new RunWriter(std::move(file)));
  return Status::OK();
}

Status RunWriter::Add(std::string_view key, std::string_view value) {
  if (block_.empty()) block_.assign(kBlockHeadBytes, '\0');
  PutVarint32(&block_, static_cast<uint32_t>(key.size()));
  PutVarint32(&block_, static_cast<uint32_t>(value.size()));
  block_.append(key);
  block_.append(value);
  ++block_records_;
  ++records_;
  if (block_.size() >= kRunBlockBytes) return FlushBlock();
  return Status::OK();
}

Status RunWriter::FlushBlock() {
  if (block_records_ == 0) return Status::OK();
  EncodeFixed32(block_.data(), static_cast<uint32_t>(block_.size() - kBlockHeadBytes));
  EncodeFixed32(block_.data() + 4, block_records_);
  PutFixed32(&block_, Checksum32(block_));
  FERN_RETURN_IF_ERROR(file_->Write(offset_, block_));
  largest_block_ = std::max<uint64_t>(largest_block_, block_.size());
  offset_ += block_.size();
  block_.clear();
  block_records_ = 0;
  return Status::OK();
}

Status RunWriter::Finish() { return FlushBlock(); }

// ---- RunReader -----------------------------------------------------------------

Status RunReader::Open(const std::string& path, uint64_t records, std::unique_ptr<RunReader>* out) {
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(File::Open(path, File::Mode::kReadOnly, &file));
  std::unique_ptr<RunReader> reader(new RunReader(std::move(file), records));
  std::string head;
  FERN_RETURN_IF_ERROR(reader->file_->Read(0, kRunFileHeaderBytes, &head));
  if (std::memcmp(head.data(), kRunFileMagic, sizeof(kRunFileMagic)) != 0) {
    return reader->Corrupt("not a run file (bad magic)");
  }
  uint32_t version = DecodeFixed32(head.data() + 8);
  if (version != kRunFileFormatVersion) {
    return reader->Corrupt(StrCat("unknown run file format version ", version));
  }
  FERN_RETURN_IF_ERROR(reader->Next());
  *out = std::move(reader);
  return Status::OK();
}

Status RunReader::Corrupt(const std::string& what) const {
  return Status::Corruption(StrCat(file_->path(), ": ", what));
}

Status RunReader::ReadBlock() {
  std::string head;
  FERN_RETURN_IF_ERROR(file_->ReadUpTo(offset_, kBlockHeadBytes, &head));
  if (head.empty()) {
    block_left_ = 0;
    return Status::OK();  // the end of the file
  }
  if (head.size() < kBlockHeadBytes) {
    return Corrupt(StrCat("truncated block head at offset ", offset_));
  }
  const uint32_t payload = DecodeFixed32(head.data());
  const uint32_t count = DecodeFixed32(head.data() + 4);
  if (count == 0 || payload > (uint32_t{1} << 30)) {
    return Corrupt(StrCat("implausible block at offset ", offset_, ": ", count, " records in ",
                          payload, " bytes"));
  }
  FERN_RETURN_IF_ERROR(file_->Read(offset_, kBlockHeadBytes + payload + kBlockTailBytes, &block_));
  std::string_view checked(block_.data(), kBlockHeadBytes + payload);
  if (Checksum32(checked) != DecodeFixed32(block_.data() + checked.size())) {
    return Corrupt(StrCat("checksum mismatch in block at offset ", offset_));
  }
  offset_ += block_.size();
  rest_ = checked.substr(kBlockHeadBytes);
  block_left_ = count;
  return Status::OK();
}

Status RunReader::Next() {
  valid_ = false;
  if (block_left_ == 0) {
    if (!rest_.empty()) {
      return Corrupt(StrCat("block before offset ", offset_, " has bytes after its last record"));
    }
    FERN_RETURN_IF_ERROR(ReadBlock());
    if (block_left_ == 0) {
      if (read_ != expected_) {
        return Corrupt(StrCat("holds ", read_, " records, expected ", expected_));
      }
      return Status::OK();
    }
  }
  Decoder decoder(rest_);
  uint32_t key_size;
  uint32_t value_size;
  if (!decoder.GetVarint32(&key_size) || !decoder.GetVarint32(&value_size) ||
      !decoder.GetBytes(key_size, &key_) || !decoder.GetBytes(value_size, &value_)) {
    return Corrupt(StrCat("malformed record in block before offset ", offset_));
  }
  rest_ = decoder.rest();
  --block_left_;
  if (++read_ > expected_) {
    return Corrupt(StrCat("holds more than the ", expected_, " records written"));
  }
  valid_ = true;
  return Status::OK();
}

// ---- merge ---------------------------------------------------------------------

Status MergeSources(const std::vector<RowSource*>& sources, const Comparator& cmp,
                    const RowSink& sink) {
  // A min-heap of source indexes by current key (std::*_heap keep the largest on top,
  // hence the reversed comparison).
  auto later = [&](size_t a, size_t b) {
    return cmp.Compare(sources[a]->key(), sources[b]->key()) > 0;
  };
  std::vector<size_t> heap;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i]->Valid()) heap.push_back(i);
  }
  std::make_heap(heap.begin(), heap.end(), later);
  std::string previous;
  bool first = true;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    RowSource* source = sources[heap.back()];
    std::string_view key = source->key();
    if (!first && cmp.Compare(previous, key) == 0) return DuplicateKeyError(key);
    first = false;
    previous.assign(key);
    FERN_RETURN_IF_ERROR(sink(key, source->value()));
    FERN_RETURN_IF_ERROR(source->Next());
    if (source->Valid()) {
      std::push_heap(heap.begin(), heap.end(), later);
    } else {
      heap.pop_back();
    }
  }
  return Status::OK();
}

}  // namespace fern
