#include "db/catalog.h"

#include <cstring>

#include "util/checksum.h"
#include "util/coding.h"
#include "util/file.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {
constexpr char kMagic[8] = {'F', 'E', 'R', 'N', 'C', 'A', 'T', 'L'};
constexpr uint32_t kVersion = 4;
}  // namespace

std::string Catalog::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  PutFixed32(&out, kVersion);
  PutFixed64(&out, next_table_id);
  PutFixed64(&out, replay_from_lsn);
  PutFixed32(&out, static_cast<uint32_t>(tables.size()));
  for (const auto& [name, entry] : tables) {
    PutFixed64(&out, entry.id);
    PutLengthPrefixed(&out, name);
    PutLengthPrefixed(&out, entry.file_name);
    PutFixed64(&out, entry.header_count);
    PutFixed64(&out, entry.file_uid);
  }
  PutFixed64(&out, Checksum64(out));
  return out;
}

Status Catalog::Parse(std::string_view bytes, const std::string& path, Catalog* out) {
  auto corrupt = [&path](std::string_view why) {
    return Status::Corruption(StrCat(path, ": ", why));
  };
  if (bytes.size() < sizeof(kMagic) + 4 + 8 + 4 + 8) return corrupt("catalog truncated");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return corrupt("bad catalog magic");
  std::string_view body = bytes.substr(0, bytes.size() - 8);
  if (Checksum64(body) != DecodeFixed64(bytes.data() + body.size())) {
    return corrupt("catalog checksum mismatch");
  }
  Decoder in(body.substr(sizeof(kMagic)));
  uint32_t version, count;
  Catalog catalog;
  if (!in.GetFixed32(&version)) return corrupt("catalog truncated");
  if (version < 1 || version > kVersion) {
    return corrupt(StrCat("unsupported catalog version ", version));
  }
  if (!in.GetFixed64(&catalog.next_table_id) ||
      (version >= 2 && !in.GetFixed64(&catalog.replay_from_lsn)) || !in.GetFixed32(&count)) {
    return corrupt("catalog truncated");
  }
  for (uint32_t i = 0; i < count; ++i) {
    CatalogEntry entry;
    std::string_view name, file;
    if (!in.GetFixed64(&entry.id) || !in.GetLengthPrefixed(&name) || !in.GetLengthPrefixed(&file) ||
        (version >= 3 && !in.GetFixed64(&entry.header_count)) ||
        (version >= 4 && !in.GetFixed64(&entry.file_uid))) {
      return corrupt(StrCat("catalog entry ", i, " truncated"));
    }
    if (file.empty() || file.find('/') != std::string_view::npos) {
      return corrupt(StrCat("catalog entry ", i, " has a bad file name"));
    }
    entry.file_name.assign(file);
    if (!catalog.tables.emplace(std::string(name), std::move(entry)).second) {
      return corrupt(StrCat("catalog names table \"", EscapeBytes(name), "\" twice"));
    }
  }
  if (!in.empty()) return corrupt("trailing bytes in catalog");
  *out = std::move(catalog);
  return Status::OK();
}

Status Catalog::Load(const std::string& path, Catalog* out) {
  std::string bytes;
  FERN_RETURN_IF_ERROR(ReadFileToString(path, &bytes));
  return Parse(bytes, path, out);
}

Status Catalog::Save(const std::string& path) const {
  return WriteFileAtomically(path, Serialize());
}

}  // namespace fern
