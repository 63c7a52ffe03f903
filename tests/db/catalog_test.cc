// The catalog file: round trips, older versions still read, damage refused.
#include "db/catalog.h"

#include <string>

#include "gtest/gtest.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace fern {
namespace {

Catalog Sample() {
  Catalog catalog;
  catalog.next_table_id = 7;
  catalog.replay_from_lsn = 12345;
  catalog.tables["alpha"] = CatalogEntry{1, "table-1.ft", 42, 0x1234abcd5678ef90ull};
  catalog.tables["beta"] = CatalogEntry{6, "table-6.ft", 3, 77};
  return catalog;
}

// A catalog in the version 2 layout (no header counts) or 3 (no file uids).
std::string OlderVersion(const Catalog& catalog, uint32_t version) {
  std::string out = "FERNCATL";
  PutFixed32(&out, version);
  PutFixed64(&out, catalog.next_table_id);
  PutFixed64(&out, catalog.replay_from_lsn);
  PutFixed32(&out, static_cast<uint32_t>(catalog.tables.size()));
  for (const auto& [name, entry] : catalog.tables) {
    PutFixed64(&out, entry.id);
    PutLengthPrefixed(&out, name);
    PutLengthPrefixed(&out, entry.file_name);
    if (version >= 3) PutFixed64(&out, entry.header_count);
  }
  PutFixed64(&out, Checksum64(out));
  return out;
}

TEST(CatalogTest, RoundTripsHeaderCountsAndFileUids) {
  const Catalog catalog = Sample();
  Catalog parsed;
  ASSERT_TRUE(Catalog::Parse(catalog.Serialize(), "CATALOG", &parsed).ok());
  EXPECT_EQ(parsed.next_table_id, 7u);
  EXPECT_EQ(parsed.replay_from_lsn, 12345u);
  ASSERT_EQ(parsed.tables.size(), 2u);
  EXPECT_EQ(parsed.tables["alpha"].header_count, 42u);
  EXPECT_EQ(parsed.tables["alpha"].file_uid, 0x1234abcd5678ef90ull);
  EXPECT_EQ(parsed.tables["beta"].file_uid, 77u);
  EXPECT_EQ(parsed.tables["beta"].id, 6u);
  EXPECT_EQ(parsed.tables["beta"].file_name, "table-6.ft");
  EXPECT_EQ(parsed.Serialize(), catalog.Serialize());
}

TEST(CatalogTest, VersionTwoIsReadWithUnknownHeaderCounts) {
  Catalog parsed;
  Status s = Catalog::Parse(OlderVersion(Sample(), 2), "CATALOG", &parsed);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(parsed.replay_from_lsn, 12345u);
  EXPECT_EQ(parsed.tables["alpha"].header_count, 0u);
  EXPECT_EQ(parsed.tables["alpha"].file_uid, 0u);
  EXPECT_EQ(parsed.tables["alpha"].file_name, "table-1.ft");
}

TEST(CatalogTest, VersionThreeIsReadWithUnknownFileUids) {
  Catalog parsed;
  Status s = Catalog::Parse(OlderVersion(Sample(), 3), "CATALOG", &parsed);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(parsed.tables["alpha"].header_count, 42u);
  EXPECT_EQ(parsed.tables["alpha"].file_uid, 0u);
  EXPECT_EQ(parsed.tables["beta"].file_name, "table-6.ft");
}

TEST(CatalogTest, DamageAndUnknownVersionsAreCorruption) {
  const std::string bytes = Sample().Serialize();
  Catalog parsed;
  for (size_t size : {size_t{0}, size_t{10}, bytes.size() - 1}) {
    EXPECT_TRUE(Catalog::Parse(bytes.substr(0, size), "CATALOG", &parsed).IsCorruption()) << size;
  }
  std::string flipped = bytes;
  flipped[30] ^= 1;
  EXPECT_TRUE(Catalog::Parse(flipped, "CATALOG", &parsed).IsCorruption());
  std::string future = bytes.substr(0, bytes.size() - 8);
  EncodeFixed32(future.data() + 8, 5);
  PutFixed64(&future, Checksum64(future));
  Status s = Catalog::Parse(future, "CATALOG", &parsed);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.ToString().find("version 5"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace fern
