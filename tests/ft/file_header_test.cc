#include "ft/file_header.h"

#include <string>

#include "gtest/gtest.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/strings.h"

namespace fern {
namespace {

FileHeader SampleHeader() {
  FileHeader h;
  h.checkpoint_count = 7;
  h.checkpoint_lsn = 123456789;
  h.root = 42;
  h.max_msn = 1ull << 40;
  h.next_txn_hint = 99;
  h.node_bytes = 4 << 20;
  h.basement_bytes = 64 << 10;
  h.compression = 3;
  h.compression_level = -2;
  h.comparator_name = "fern.bytewise";
  h.block_table = BlockLocation{8192 + 4096 * 3, 4000};
  h.block_table_checksum = 0xfeedfacecafebeefull;
  h.created_unix_seconds = 1700000000;
  h.file_uid = 0x8badf00d12345678ull;
  return h;
}

Status ParseSlot(std::string bytes, FileHeader* out) {
  bytes.resize(kHeaderSlotBytes, '\0');
  return FileHeader::Parse(bytes, out);
}

TEST(FileHeaderTest, RoundTripsEveryField) {
  const FileHeader h = SampleHeader();
  FileHeader parsed;
  ASSERT_TRUE(ParseSlot(h.Serialize(), &parsed).ok());
  EXPECT_EQ(parsed, h);
}

TEST(FileHeaderTest, NoRootIsLegal) {
  FileHeader h = SampleHeader();
  h.root = -1;
  h.comparator_name.clear();
  FileHeader parsed;
  ASSERT_TRUE(FileHeader::Parse(h.Serialize(), &parsed).ok());
  EXPECT_EQ(parsed.root, -1);
  EXPECT_EQ(parsed, h);
}

TEST(FileHeaderTest, StartsWithMagicAndFitsASlot) {
  FileHeader h = SampleHeader();
  h.comparator_name.assign(kMaxComparatorNameBytes, 'c');
  const std::string bytes = h.Serialize();
  EXPECT_EQ(bytes.substr(0, 8), "FERNTREE");
  EXPECT_EQ(bytes.size(), kHeaderSlotBytes);
  FileHeader parsed;
  ASSERT_TRUE(FileHeader::Parse(bytes, &parsed).ok());
  EXPECT_EQ(parsed.comparator_name.size(), kMaxComparatorNameBytes);
}

// Version 1 (files written before file uids) is still written for such files and read.
TEST(FileHeaderTest, VersionOneHasNoFileUid) {
  FileHeader h = SampleHeader();
  h.format_version = 1;
  h.file_uid = 0;
  const std::string bytes = h.Serialize();
  EXPECT_EQ(DecodeFixed32(bytes.data() + 8), 1u);
  EXPECT_EQ(bytes.size(), 112 + h.comparator_name.size());
  FileHeader parsed;
  ASSERT_TRUE(ParseSlot(bytes, &parsed).ok());
  EXPECT_EQ(parsed, h);

  // Versions 2 and 3 (3: leaves may reference value blocks) share one header layout.
  const std::string v3 = SampleHeader().Serialize();
  EXPECT_EQ(DecodeFixed32(v3.data() + 8), 3u);
  EXPECT_EQ(v3.size(), bytes.size() + 8);
  FileHeader two = SampleHeader();
  two.format_version = 2;
  const std::string v2 = two.Serialize();
  EXPECT_EQ(DecodeFixed32(v2.data() + 8), 2u);
  EXPECT_EQ(v2.size(), v3.size());
  ASSERT_TRUE(ParseSlot(v2, &parsed).ok());
  EXPECT_EQ(parsed, two);

  // Version 1's slot holds an 8-byte longer comparator name.
  h.comparator_name.assign(MaxComparatorNameBytes(1), 'c');
  EXPECT_EQ(h.Serialize().size(), kHeaderSlotBytes);
  ASSERT_TRUE(FileHeader::Parse(h.Serialize(), &parsed).ok());
  EXPECT_EQ(parsed.comparator_name.size(), MaxComparatorNameBytes(1));
}

TEST(FileHeaderTest, EveryFlippedByteIsCorruption) {
  const std::string good = SampleHeader().Serialize();
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    FileHeader parsed;
    EXPECT_TRUE(ParseSlot(bad, &parsed).IsCorruption()) << "byte " << i;
  }
}

TEST(FileHeaderTest, EveryTruncationIsCorruption) {
  const std::string good = SampleHeader().Serialize();
  for (size_t n = 0; n < good.size(); ++n) {
    FileHeader parsed;
    const Status s = FileHeader::Parse(good.substr(0, n), &parsed);
    EXPECT_TRUE(s.IsCorruption()) << n;
    EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
  }
}

TEST(FileHeaderTest, NamesWhatWasWrong) {
  FileHeader parsed;
  std::string bytes = SampleHeader().Serialize();

  std::string bad_magic = bytes;
  bad_magic[3] = 'x';
  EXPECT_NE(ParseSlot(bad_magic, &parsed).message().find("bad magic"), std::string::npos);

  std::string future = bytes.substr(0, bytes.size() - 8);
  EncodeFixed32(future.data() + 8, kTreeFileFormatVersion + 1);
  PutFixed64(&future, Checksum64(future));
  EXPECT_NE(ParseSlot(future, &parsed)
                .message()
                .find(StrCat("unsupported format version ", kTreeFileFormatVersion + 1)),
            std::string::npos);

  std::string bad_sum = bytes;
  bad_sum[40] ^= 1;
  EXPECT_NE(ParseSlot(bad_sum, &parsed).message().find("checksum mismatch"), std::string::npos);

  std::string bad_length = bytes;
  EncodeFixed32(bad_length.data() + 12, 5000);
  EXPECT_NE(ParseSlot(bad_length, &parsed).message().find("bad length"), std::string::npos);

  // A checksum-valid header whose name length disagrees with its total length.
  std::string inconsistent = bytes.substr(0, bytes.size() - 8);
  EncodeFixed16(inconsistent.data() + 102, 3);
  PutFixed64(&inconsistent, Checksum64(inconsistent));
  const Status s = ParseSlot(inconsistent, &parsed);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("bad length"), std::string::npos) << s.ToString();
}

TEST(FileHeaderTest, AllZeroSlotIsCorruption) {
  FileHeader parsed;
  EXPECT_TRUE(FileHeader::Parse(std::string(kHeaderSlotBytes, '\0'), &parsed).IsCorruption());
}

}  // namespace
}  // namespace fern
