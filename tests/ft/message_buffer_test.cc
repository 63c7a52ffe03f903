#include "ft/message_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ft/message.h"
#include "test_util.h"
#include "util/coding.h"
#include "util/strings.h"

namespace fern {
namespace {

// Orders keys backwards, to show that the index follows the comparator, not bytes.
using fern::testing::ReverseComparator;

// A message that owns its bytes, for models.
struct OwnedMessage {
  MessageType type = MessageType::kInsert;
  Msn msn = 0;
  XidStack xids;
  std::string key;
  std::string value;

  Message view() const { return Message{type, msn, xids, key, value}; }
  static OwnedMessage From(const Message& m) {
    return OwnedMessage{m.type, m.msn, m.xids, std::string(m.key), std::string(m.value)};
  }
  bool operator==(const OwnedMessage& o) const {
    return type == o.type && msn == o.msn && xids == o.xids && key == o.key && value == o.value;
  }
};

std::string Describe(const OwnedMessage& m) {
  return "msn " + std::to_string(m.msn) + " key '" + m.key + "'";
}

std::vector<OwnedMessage> Collect(const MessageBuffer& buffer) {
  std::vector<OwnedMessage> out;
  buffer.ForEach([&](const Message& m) { out.push_back(OwnedMessage::From(m)); });
  return out;
}

std::vector<Msn> MsnsWithKey(const MessageBuffer& buffer, std::string_view key,
                             const Comparator& cmp) {
  std::vector<Msn> out;
  buffer.ForEachWithKey(key, cmp, [&](const Message& m) {
    EXPECT_EQ(cmp.Compare(m.key, key), 0);
    out.push_back(m.msn);
  });
  // Every query of a key's messages also checks NewestWithKey against them: the last.
  Message newest;
  const bool found = buffer.NewestWithKey(key, cmp, &newest);
  EXPECT_EQ(found, !out.empty()) << EscapeBytes(key);
  if (found && !out.empty()) {
    EXPECT_EQ(newest.msn, out.back()) << EscapeBytes(key);
    EXPECT_EQ(cmp.Compare(newest.key, key), 0);
  }
  return out;
}

std::vector<Msn> MsnsInRange(const MessageBuffer& buffer, const std::string_view* lower,
                             const std::string_view* upper, const Comparator& cmp) {
  std::vector<Msn> out;
  buffer.ForEachInRange(lower, upper, cmp, [&](const Message& m) { out.push_back(m.msn); });
  return out;
}

OwnedMessage RandomMessage(std::mt19937_64& rng, Msn msn, int key_space) {
  OwnedMessage m;
  m.msn = msn;
  int r = static_cast<int>(rng() % 100);
  if (r < 3) {
    m.type = (r == 0) ? MessageType::kOptimize : MessageType::kUpdateBroadcast;
  } else {
    static constexpr MessageType kKeyed[] = {MessageType::kInsert, MessageType::kDelete,
                                             MessageType::kUpdate, MessageType::kCommitAny,
                                             MessageType::kAbortAny};
    m.type = kKeyed[rng() % 5];
    m.key = "k" + std::to_string(rng() % key_space);
  }
  size_t depth = rng() % 3;
  for (size_t i = 0; i < depth; ++i) m.xids.Push(100 + rng() % 50);
  if (m.type != MessageType::kDelete) m.value = std::string(rng() % 20, 'a' + rng() % 26);
  return m;
}

// ---- messages ------------------------------------------------------------------------------

TEST(MessageTest, BroadcastTypesAreUpdateBroadcastAndOptimize) {
  EXPECT_TRUE(IsBroadcast(MessageType::kUpdateBroadcast));
  EXPECT_TRUE(IsBroadcast(MessageType::kOptimize));
  EXPECT_FALSE(IsBroadcast(MessageType::kInsert));
  EXPECT_FALSE(IsBroadcast(MessageType::kDelete));
  EXPECT_FALSE(IsBroadcast(MessageType::kUpdate));
  EXPECT_FALSE(IsBroadcast(MessageType::kCommitAny));
  EXPECT_FALSE(IsBroadcast(MessageType::kAbortAny));
  EXPECT_FALSE(IsValidMessageType(0));
  for (uint8_t t = 1; t <= 7; ++t) EXPECT_TRUE(IsValidMessageType(t));
  EXPECT_FALSE(IsValidMessageType(8));
  EXPECT_FALSE(IsValidMessageType(255));
}

TEST(MessageTest, XidStackKeepsOutermostFirst) {
  XidStack empty;
  EXPECT_TRUE(empty.empty());
  XidStack xids{7, 9, 11};
  ASSERT_EQ(xids.size(), 3u);
  EXPECT_EQ(xids.outermost(), 7u);
  EXPECT_EQ(xids.innermost(), 11u);
  EXPECT_EQ(xids[1], 9u);
  XidStack copy = xids;
  EXPECT_EQ(copy, xids);
  copy.Push(13);
  EXPECT_FALSE(copy == xids);
  copy.Pop();
  EXPECT_EQ(copy, xids);
  XidStack full;
  for (size_t i = 0; i < kMaxXidDepth; ++i) full.Push(i + 1);
  EXPECT_EQ(full.size(), kMaxXidDepth);
  EXPECT_EQ(full.innermost(), kMaxXidDepth);
}

TEST(MessageTest, EncodeDecodeRoundTrip) {
  std::vector<OwnedMessage> messages = {
      {MessageType::kInsert, 1, {}, "key", "value"},
      {MessageType::kDelete, 2, XidStack{5}, "k", ""},
      {MessageType::kUpdate, 300, XidStack{5, 6, 7}, std::string("\0\xff", 2), "extra"},
      {MessageType::kUpdateBroadcast, uint64_t{1} << 63, XidStack{9}, "", "x"},
      {MessageType::kCommitAny, 5, XidStack{42}, "key", ""},
      {MessageType::kAbortAny, 6, XidStack{42}, "key", ""},
      {MessageType::kOptimize, 7, {}, "", ""},
      {MessageType::kInsert, 8, {}, std::string(300, 'k'), std::string(100000, 'v')},
  };
  XidStack deep;
  for (size_t i = 0; i < kMaxXidDepth; ++i) deep.Push(1000 + i);
  messages.push_back({MessageType::kInsert, 9, deep, "deep", "v"});

  std::string encoded;
  for (const auto& m : messages) {
    size_t before = encoded.size();
    EncodeMessage(m.view(), &encoded);
    EXPECT_EQ(encoded.size() - before, EncodedMessageSize(m.view())) << Describe(m);
  }
  Decoder in(encoded);
  for (const auto& expected : messages) {
    Message m;
    ASSERT_TRUE(DecodeMessage(&in, &m)) << Describe(expected);
    EXPECT_EQ(OwnedMessage::From(m), expected) << Describe(expected);
  }
  EXPECT_TRUE(in.empty());
}

TEST(MessageTest, DecodeRejectsUnknownType) {
  for (uint8_t bad : {uint8_t{0}, uint8_t{8}, uint8_t{255}}) {
    std::string encoded;
    EncodeMessage(Message{MessageType::kInsert, 1, {}, "k", "v"}, &encoded);
    encoded[0] = static_cast<char>(bad);
    Decoder in(encoded);
    Message m;
    EXPECT_FALSE(DecodeMessage(&in, &m)) << int{bad};
  }
}

TEST(MessageTest, DecodeRejectsTooManyXids) {
  std::string encoded;
  PutFixed8(&encoded, static_cast<uint8_t>(MessageType::kInsert));
  PutFixed64(&encoded, 1);
  PutFixed8(&encoded, kMaxXidDepth + 1);
  for (size_t i = 0; i <= kMaxXidDepth; ++i) PutFixed64(&encoded, i + 1);
  PutLengthPrefixed(&encoded, "k");
  PutLengthPrefixed(&encoded, "v");
  Decoder in(encoded);
  Message m;
  EXPECT_FALSE(DecodeMessage(&in, &m));
}

TEST(MessageTest, DecodeRejectsNoTxnInXidStack) {
  std::string encoded;
  EncodeMessage(Message{MessageType::kInsert, 1, XidStack{5}, "k", "v"}, &encoded);
  EncodeFixed64(&encoded[10], kNoTxn);
  Decoder in(encoded);
  Message m;
  EXPECT_FALSE(DecodeMessage(&in, &m));
}

TEST(MessageTest, DecodeRejectsEveryTruncation) {
  std::string encoded;
  EncodeMessage(Message{MessageType::kUpdate, 77, XidStack{3, 4}, "key", "extra"}, &encoded);
  for (size_t n = 0; n < encoded.size(); ++n) {
    Decoder in(std::string_view(encoded).substr(0, n));
    Message m;
    EXPECT_FALSE(DecodeMessage(&in, &m)) << "length " << n;
  }
}

// ---- message buffers -----------------------------------------------------------------------

TEST(MessageBufferTest, EmptyBuffer) {
  MessageBuffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.count(), 0u);
  EXPECT_EQ(buffer.bytes(), 0u);
  EXPECT_EQ(buffer.max_msn(), 0u);
  EXPECT_TRUE(Collect(buffer).empty());
  EXPECT_TRUE(MsnsWithKey(buffer, "a", *BytewiseComparator()).empty());
  EXPECT_TRUE(MsnsInRange(buffer, nullptr, nullptr, *BytewiseComparator()).empty());
}

TEST(MessageBufferTest, ForEachVisitsEveryMessageInFifoOrder) {
  const Comparator& cmp = *BytewiseComparator();
  std::mt19937_64 rng(1);
  MessageBuffer buffer;
  std::vector<OwnedMessage> model;
  size_t bytes = 0;
  for (Msn msn = 1; msn <= 1000; ++msn) {
    model.push_back(RandomMessage(rng, msn * 3, 50));
    buffer.Append(model.back().view(), cmp);
    bytes += EncodedMessageSize(model.back().view());
  }
  EXPECT_EQ(buffer.count(), model.size());
  EXPECT_FALSE(buffer.empty());
  EXPECT_EQ(buffer.bytes(), bytes);
  EXPECT_GE(buffer.memory_bytes(), bytes);
  EXPECT_EQ(buffer.max_msn(), 3000u);
  EXPECT_EQ(Collect(buffer), model);
}

// Checks ForEachWithKey and ForEachInRange against a brute-force model, over a buffer large
// enough that matches sit in both the sorted index and its unsorted tail.
void CheckAgainstModel(const Comparator& cmp, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int kKeySpace = 700;
  const int kMessages = 12000;
  MessageBuffer buffer;
  std::vector<OwnedMessage> model;
  auto check_key = [&](const std::string& key) {
    std::vector<Msn> expected;
    for (const auto& m : model) {
      if (!IsBroadcast(m.type) && cmp.Compare(m.key, key) == 0) expected.push_back(m.msn);
    }
    ASSERT_EQ(MsnsWithKey(buffer, key, cmp), expected)
        << "key " << key << " after " << model.size() << " messages";
  };
  auto check_range = [&](const std::string_view* lower, const std::string_view* upper) {
    std::vector<const OwnedMessage*> in_range;
    for (const auto& m : model) {
      if (IsBroadcast(m.type)) continue;
      if (lower != nullptr && cmp.Compare(m.key, *lower) < 0) continue;
      if (upper != nullptr && cmp.Compare(m.key, *upper) >= 0) continue;
      in_range.push_back(&m);
    }
    std::stable_sort(in_range.begin(), in_range.end(),
                     [&](const OwnedMessage* a, const OwnedMessage* b) {
                       return cmp.Compare(a->key, b->key) < 0;
                     });
    std::vector<Msn> expected;
    for (const auto* m : in_range) expected.push_back(m->msn);
    ASSERT_EQ(MsnsInRange(buffer, lower, upper, cmp), expected)
        << (lower ? std::string(*lower) : "-inf") << " .. "
        << (upper ? std::string(*upper) : "+inf") << " after " << model.size() << " messages";
  };
  Msn msn = 0;
  for (int i = 0; i < kMessages; ++i) {
    msn += 1 + rng() % 3;
    model.push_back(RandomMessage(rng, msn, kKeySpace));
    buffer.Append(model.back().view(), cmp);
    if (i % 1499 == 0 || i == kMessages - 1) {
      for (int q = 0; q < 40; ++q) check_key("k" + std::to_string(rng() % (kKeySpace + 20)));
      check_key("");
      for (int q = 0; q < 5; ++q) {
        std::string a = "k" + std::to_string(rng() % kKeySpace);
        std::string b = "k" + std::to_string(rng() % kKeySpace);
        std::string_view lower = a;
        std::string_view upper = b;
        check_range(&lower, &upper);
        check_range(nullptr, &upper);
        check_range(&lower, nullptr);
        // Narrow ranges (a cursor batch's): a few keys, or none.
        std::string narrow = a + "5";
        std::string_view narrow_upper = narrow;
        check_range(&lower, &narrow_upper);
        check_range(&lower, &lower);
      }
      check_range(nullptr, nullptr);
    }
  }
  // Every key, once the buffer is full.
  for (int k = 0; k < kKeySpace; ++k) check_key("k" + std::to_string(k));
  size_t broadcasts = 0;
  for (const auto& m : model) broadcasts += IsBroadcast(m.type);
  EXPECT_EQ(buffer.broadcast_count(), broadcasts);
  EXPECT_EQ(Collect(buffer), model);
}

TEST(MessageBufferTest, KeyQueriesMatchBruteForceModel) {
  CheckAgainstModel(*BytewiseComparator(), 7);
}

TEST(MessageBufferTest, KeyQueriesFollowTheComparator) {
  ReverseComparator reverse;
  CheckAgainstModel(reverse, 8);
}

// The search index keeps a prefix every indexed key shares; keys arriving later that share
// less shrink it. Queries must stay exact through every phase and after a reload.
TEST(MessageBufferTest, KeyQueriesStayExactWhileTheSharedPrefixShrinks) {
  const Comparator& cmp = *BytewiseComparator();
  std::mt19937_64 rng(19);
  const std::vector<std::string> stems = {"user:000123:", "user:0001", "user:", "u", "", "zz"};
  MessageBuffer buffer;
  std::vector<OwnedMessage> model;
  std::vector<std::string> keys;
  auto check = [&](const MessageBuffer& b) {
    for (int q = 0; q < 60; ++q) {
      std::string key = keys[rng() % keys.size()];
      if (q % 3 == 0) key.push_back(static_cast<char>(rng() % 3));  // between stored keys
      std::vector<Msn> expected;
      for (const auto& m : model) {
        if (cmp.Compare(m.key, key) == 0) expected.push_back(m.msn);
      }
      ASSERT_EQ(MsnsWithKey(b, key, cmp), expected) << EscapeBytes(key);
      std::string other = keys[rng() % keys.size()];
      std::string_view lower = std::min(key, other);
      std::string_view upper = std::max(key, other);
      std::vector<const OwnedMessage*> in_range;
      for (const auto& m : model) {
        if (cmp.Compare(m.key, lower) >= 0 && cmp.Compare(m.key, upper) < 0) in_range.push_back(&m);
      }
      std::stable_sort(
          in_range.begin(), in_range.end(),
          [&](const OwnedMessage* a, const OwnedMessage* b) { return a->key < b->key; });
      std::vector<Msn> expected_range;
      for (const auto* m : in_range) expected_range.push_back(m->msn);
      ASSERT_EQ(MsnsInRange(b, &lower, &upper, cmp), expected_range)
          << EscapeBytes(lower) << " .. " << EscapeBytes(upper);
    }
  };
  Msn msn = 0;
  for (const std::string& stem : stems) {
    for (int i = 0; i < 300; ++i) {
      OwnedMessage m;
      m.msn = ++msn;
      m.key = stem;
      int extra = static_cast<int>(rng() % 7);
      for (int c = 0; c < extra; ++c) {
        m.key.push_back(static_cast<char>(rng() % 5 == 0 ? '\0' : '0' + rng() % 4));
      }
      m.value = "v";
      keys.push_back(m.key);
      model.push_back(m);
      buffer.Append(m.view(), cmp);
      if (i % 97 == 0) {
        ASSERT_NO_FATAL_FAILURE(check(buffer));
      }
    }
    ASSERT_NO_FATAL_FAILURE(check(buffer));
    std::string bytes;
    buffer.Serialize(&bytes);
    MessageBuffer reloaded;
    ASSERT_TRUE(MessageBuffer::Deserialize(bytes, cmp, &reloaded).ok());
    ASSERT_NO_FATAL_FAILURE(check(reloaded));
  }
}

// Deserialize sorts a large buffer's key index by key heads; its order must be exactly the
// one appends build: keys that tie on the eight bytes after their shared prefix, keys that
// are prefixes of others, zero bytes, and repeated keys in MSN order.
TEST(MessageBufferTest, DeserializeOrdersALargeBufferAsAppendsDo) {
  const Comparator& cmp = *BytewiseComparator();
  std::mt19937_64 rng(23);
  MessageBuffer buffer;
  Msn msn = 0;
  for (int i = 0; i < 5000; ++i) {
    OwnedMessage m;
    m.msn = ++msn;
    m.key = "tenant-0042/orders/";
    const int shape = static_cast<int>(rng() % 4);
    if (shape == 0) m.key += "20261204";  // ties on the head, differs after it
    if (shape == 1) m.key += std::string(1 + rng() % 3, '\0');
    for (int c = static_cast<int>(rng() % 12); c > 0; --c) {
      m.key.push_back(static_cast<char>(rng() % 4 == 0 ? '\0' : 'a' + rng() % 3));
    }
    if (shape == 3 && msn > 1) m.key = "tenant-0042/orders/" + std::to_string(rng() % 50);
    m.value = "v";
    buffer.Append(m.view(), cmp);
  }
  std::string bytes;
  buffer.Serialize(&bytes);
  MessageBuffer reloaded;
  ASSERT_TRUE(MessageBuffer::Deserialize(bytes, cmp, &reloaded).ok());
  EXPECT_EQ(MsnsInRange(reloaded, nullptr, nullptr, cmp),
            MsnsInRange(buffer, nullptr, nullptr, cmp));
  const std::string_view lower = "tenant-0042/orders/2";
  const std::string_view upper = "tenant-0042/orders/20261204b";
  EXPECT_EQ(MsnsInRange(reloaded, &lower, &upper, cmp), MsnsInRange(buffer, &lower, &upper, cmp));
}

TEST(MessageBufferTest, ForEachInRangeHonoursBounds) {
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer buffer;
  Msn msn = 0;
  // Enough messages that the sorted index and the tail both hold every key.
  for (int round = 0; round < 30; ++round) {
    for (const char* key : {"e", "a", "c", "b", "d"}) {
      buffer.Append(Message{MessageType::kInsert, ++msn, {}, key, "v"}, cmp);
    }
  }
  auto keys_in = [&](const std::string_view* lower, const std::string_view* upper) {
    std::string keys;
    buffer.ForEachInRange(lower, upper, cmp, [&](const Message& m) {
      if (keys.empty() || keys.back() != m.key[0]) keys += m.key;
    });
    return keys;
  };
  std::string_view b = "b", d = "d", bb = "bb", z = "z", a = "a";
  EXPECT_EQ(keys_in(&b, &d), "bc");
  EXPECT_EQ(keys_in(&bb, &d), "c");
  EXPECT_EQ(keys_in(nullptr, &d), "abc");
  EXPECT_EQ(keys_in(&d, nullptr), "de");
  EXPECT_EQ(keys_in(nullptr, nullptr), "abcde");
  EXPECT_EQ(keys_in(&d, &b), "");
  EXPECT_EQ(keys_in(&b, &b), "");
  EXPECT_EQ(keys_in(&z, nullptr), "");
  EXPECT_EQ(keys_in(nullptr, &a), "");
  // Within one key, MSN order.
  std::vector<Msn> msns = MsnsInRange(buffer, &b, &bb, cmp);
  ASSERT_EQ(msns.size(), 30u);
  EXPECT_TRUE(std::is_sorted(msns.begin(), msns.end()));
}

TEST(MessageBufferTest, BroadcastsAreKeptOutOfTheKeyIndex) {
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer buffer;
  buffer.Append(Message{MessageType::kInsert, 1, {}, "", "empty key"}, cmp);
  buffer.Append(Message{MessageType::kUpdateBroadcast, 2, {}, "", "extra"}, cmp);
  buffer.Append(Message{MessageType::kInsert, 3, {}, "a", "v"}, cmp);
  buffer.Append(Message{MessageType::kOptimize, 4, {}, "", ""}, cmp);
  buffer.Append(Message{MessageType::kUpdateBroadcast, 5, XidStack{9}, "", "x"}, cmp);
  EXPECT_EQ(buffer.count(), 5u);
  EXPECT_EQ(buffer.broadcast_count(), 3u);
  EXPECT_EQ(MsnsWithKey(buffer, "", cmp), std::vector<Msn>{1});
  EXPECT_EQ(MsnsInRange(buffer, nullptr, nullptr, cmp), (std::vector<Msn>{1, 3}));
  std::vector<Msn> broadcasts;
  buffer.ForEachBroadcast([&](const Message& m) {
    EXPECT_TRUE(IsBroadcast(m.type));
    broadcasts.push_back(m.msn);
  });
  EXPECT_EQ(broadcasts, (std::vector<Msn>{2, 4, 5}));
  EXPECT_EQ(Collect(buffer).size(), 5u);
}

// The one message ForEachWithKey finds for `key` (fails the test if there is not exactly one).
Message OnlyMessageWithKey(const MessageBuffer& buffer, std::string_view key,
                           const Comparator& cmp) {
  std::vector<Message> found;
  buffer.ForEachWithKey(key, cmp, [&](const Message& m) { found.push_back(m); });
  EXPECT_EQ(found.size(), 1u) << key;
  return found.empty() ? Message{} : found[0];
}

void ExpectCommitInPlaceRules(const Comparator& cmp) {
  MessageBuffer buffer;
  Msn msn = 0;
  // Enough older messages that the first write sits in the sorted index, the rest in the tail.
  buffer.Append(Message{MessageType::kInsert, ++msn, XidStack{7}, "sorted", "s"}, cmp);
  for (int i = 0; i < 2 * static_cast<int>(MessageBuffer::kIndexTailBound); ++i) {
    buffer.Append(Message{MessageType::kInsert, ++msn, {}, StrCat("filler", i), "f"}, cmp);
  }
  buffer.Append(Message{MessageType::kInsert, ++msn, XidStack{7}, "insert", "v"}, cmp);
  buffer.Append(Message{MessageType::kDelete, ++msn, XidStack{7}, "delete", ""}, cmp);
  buffer.Append(Message{MessageType::kInsert, ++msn, XidStack{7, 8}, "nested", "n"}, cmp);
  buffer.Append(Message{MessageType::kUpdate, ++msn, XidStack{7}, "update", "u"}, cmp);
  buffer.Append(Message{MessageType::kInsert, ++msn, XidStack{7}, "overwritten", "o"}, cmp);
  buffer.Append(Message{MessageType::kInsert, ++msn, {}, "overwritten", "p"}, cmp);
  const std::vector<OwnedMessage> before = Collect(buffer);

  EXPECT_FALSE(buffer.CommitInPlace("nested", 7, cmp));       // a child's write
  EXPECT_FALSE(buffer.CommitInPlace("update", 7, cmp));       // not an insert or delete
  EXPECT_FALSE(buffer.CommitInPlace("overwritten", 7, cmp));  // not the newest for its key
  EXPECT_FALSE(buffer.CommitInPlace("insert", 8, cmp));       // another transaction's
  EXPECT_FALSE(buffer.CommitInPlace("absent", 7, cmp));
  EXPECT_EQ(Collect(buffer), before);

  for (const char* key : {"sorted", "insert", "delete"}) {
    ASSERT_TRUE(buffer.CommitInPlace(key, 7, cmp)) << key;
    const Message m = OnlyMessageWithKey(buffer, key, cmp);
    EXPECT_TRUE(m.xids.empty()) << key;
    EXPECT_EQ(m.committed_by, 7u) << key;
    EXPECT_FALSE(buffer.CommitInPlace(key, 7, cmp)) << key;  // committed already
  }
  EXPECT_EQ(OnlyMessageWithKey(buffer, "insert", cmp).value, "v");
  EXPECT_EQ(OnlyMessageWithKey(buffer, "delete", cmp).type, MessageType::kDelete);
  EXPECT_EQ(buffer.count(), before.size());

  // The stamp survives serialization; every other message is as it was.
  std::string bytes;
  buffer.Serialize(&bytes);
  MessageBuffer copy;
  ASSERT_TRUE(MessageBuffer::Deserialize(bytes, cmp, &copy).ok());
  EXPECT_EQ(OnlyMessageWithKey(copy, "insert", cmp).committed_by, 7u);
  std::vector<OwnedMessage> after = Collect(copy);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    if (after[i].key == "sorted" || after[i].key == "insert" || after[i].key == "delete") continue;
    EXPECT_EQ(after[i], before[i]) << Describe(before[i]);
  }
}

TEST(MessageBufferTest, CommitInPlaceTurnsOnlyANewestSoleWriteIntoACommittedOne) {
  ExpectCommitInPlaceRules(*BytewiseComparator());
  ReverseComparator reverse;
  ExpectCommitInPlaceRules(reverse);
}

TEST(MessageBufferTest, ClearAndSwap) {
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer a;
  MessageBuffer b;
  for (Msn msn = 1; msn <= 100; ++msn) {
    a.Append(Message{MessageType::kInsert, msn, {}, "a" + std::to_string(msn), "v"}, cmp);
  }
  b.Append(Message{MessageType::kDelete, 500, {}, "b", ""}, cmp);
  a.Swap(b);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.max_msn(), 500u);
  EXPECT_EQ(MsnsWithKey(a, "b", cmp), std::vector<Msn>{500});
  EXPECT_EQ(b.count(), 100u);
  EXPECT_EQ(MsnsWithKey(b, "a7", cmp), std::vector<Msn>{7});
  b.Clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.bytes(), 0u);
  EXPECT_EQ(b.max_msn(), 0u);
  EXPECT_TRUE(MsnsWithKey(b, "a7", cmp).empty());
  b.Append(Message{MessageType::kInsert, 1, {}, "again", "v"}, cmp);
  EXPECT_EQ(MsnsWithKey(b, "again", cmp), std::vector<Msn>{1});
}

MessageBuffer RandomBuffer(const Comparator& cmp, uint64_t seed, int n,
                           std::vector<OwnedMessage>* model) {
  std::mt19937_64 rng(seed);
  MessageBuffer buffer;
  for (int i = 0; i < n; ++i) {
    model->push_back(RandomMessage(rng, static_cast<Msn>(i + 1) * 2, 40));
    buffer.Append(model->back().view(), cmp);
  }
  return buffer;
}

// `restored` holds exactly `model` and answers every query as `original` does.
void ExpectSameAnswers(const MessageBuffer& restored, const MessageBuffer& original,
                       const std::vector<OwnedMessage>& model, const Comparator& cmp) {
  EXPECT_EQ(restored.count(), original.count());
  EXPECT_EQ(restored.broadcast_count(), original.broadcast_count());
  EXPECT_EQ(restored.bytes(), original.bytes());
  EXPECT_EQ(restored.max_msn(), original.max_msn());
  EXPECT_EQ(Collect(restored), model);
  for (int k = 0; k < 40; ++k) {
    std::string key = "k" + std::to_string(k);
    EXPECT_EQ(MsnsWithKey(restored, key, cmp), MsnsWithKey(original, key, cmp)) << key;
  }
  EXPECT_EQ(MsnsInRange(restored, nullptr, nullptr, cmp),
            MsnsInRange(original, nullptr, nullptr, cmp));
}

TEST(MessageBufferTest, SerializeRoundTrip) {
  ReverseComparator cmp;
  std::vector<OwnedMessage> model;
  MessageBuffer buffer = RandomBuffer(cmp, 3, 2000, &model);
  std::string serialized;
  buffer.Serialize(&serialized);
  EXPECT_EQ(serialized.size(), VarintLength(buffer.count()) + buffer.bytes());

  MessageBuffer restored;
  restored.Append(Message{MessageType::kInsert, 1, {}, "old", "contents"}, cmp);
  ASSERT_TRUE(MessageBuffer::Deserialize(serialized, cmp, &restored).ok());
  ExpectSameAnswers(restored, buffer, model, cmp);
  // Appends continue after a deserialized index.
  restored.Append(Message{MessageType::kInsert, restored.max_msn() + 1, {}, "k5", "new"}, cmp);
  std::vector<Msn> expected = MsnsWithKey(buffer, "k5", cmp);
  expected.push_back(restored.max_msn());
  EXPECT_EQ(MsnsWithKey(restored, "k5", cmp), expected);

  std::string empty_serialized;
  MessageBuffer().Serialize(&empty_serialized);
  ASSERT_TRUE(MessageBuffer::Deserialize(empty_serialized, cmp, &restored).ok());
  EXPECT_TRUE(restored.empty());
}

TEST(MessageBufferTest, CopyFromAnswersLikeTheOriginalAndSharesNothing) {
  ReverseComparator cmp;
  std::vector<OwnedMessage> model;
  // 2001 messages: the last appends sit in the unsorted tail of the key index.
  MessageBuffer original = RandomBuffer(cmp, 11, 2001, &model);
  MessageBuffer copy;
  copy.Append(Message{MessageType::kInsert, 1, {}, "old", "contents"}, cmp);
  copy.CopyFrom(original);
  EXPECT_EQ(copy.count(), original.count());
  EXPECT_EQ(copy.broadcast_count(), original.broadcast_count());
  EXPECT_EQ(copy.bytes(), original.bytes());
  EXPECT_EQ(copy.max_msn(), original.max_msn());
  EXPECT_LE(copy.memory_bytes(), original.memory_bytes());
  EXPECT_EQ(Collect(copy), model);
  for (int k = 0; k < 40; ++k) {
    std::string key = "k" + std::to_string(k);
    EXPECT_EQ(MsnsWithKey(copy, key, cmp), MsnsWithKey(original, key, cmp)) << key;
  }
  const std::string_view lower = "k3";
  const std::string_view upper = "k17";  // reverse order: k3 > k17
  EXPECT_EQ(MsnsInRange(copy, &lower, &upper, cmp), MsnsInRange(original, &lower, &upper, cmp));
  std::string a;
  std::string b;
  copy.Serialize(&a);
  original.Serialize(&b);
  EXPECT_EQ(a, b);

  // Changing either side leaves the other as it was.
  const Msn next = original.max_msn() + 1;
  original.Append(Message{MessageType::kInsert, next, {}, "k5", "original"}, cmp);
  copy.Append(Message{MessageType::kDelete, next, {}, "k6", ""}, cmp);
  EXPECT_EQ(Collect(original).back().key, "k5");
  EXPECT_EQ(Collect(copy).back().key, "k6");
  EXPECT_EQ(MsnsWithKey(copy, "k5", cmp).size() + 1, MsnsWithKey(original, "k5", cmp).size());
  original.Clear();
  EXPECT_EQ(copy.count(), model.size() + 1);

  MessageBuffer empty;
  copy.CopyFrom(empty);
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(copy.max_msn(), 0u);
  EXPECT_TRUE(MsnsWithKey(copy, "k6", cmp).empty());
}

TEST(MessageBufferTest, DeserializeRejectsEveryTruncation) {
  const Comparator& cmp = *BytewiseComparator();
  std::vector<OwnedMessage> model;
  MessageBuffer buffer = RandomBuffer(cmp, 4, 60, &model);
  std::string serialized;
  buffer.Serialize(&serialized);
  for (size_t n = 0; n < serialized.size(); ++n) {
    MessageBuffer out;
    Status s = MessageBuffer::Deserialize(std::string_view(serialized).substr(0, n), cmp, &out);
    ASSERT_TRUE(s.IsCorruption()) << "length " << n << ": " << s.ToString();
    EXPECT_TRUE(out.empty());
  }
  Status trailing = MessageBuffer::Deserialize(serialized + "x", cmp, &buffer);
  EXPECT_TRUE(trailing.IsCorruption()) << trailing.ToString();
  EXPECT_EQ(buffer.count(), model.size()) << "a failed Deserialize must leave *out unchanged";
}

// Deserialize from an rvalue adopts the bytes as the arena: it answers exactly as the copying
// form, keeps the buffer's storage, serializes back to the same bytes, and takes appends.
TEST(MessageBufferTest, DeserializeAdoptingTheBytesMatchesCopying) {
  ReverseComparator cmp;
  std::vector<OwnedMessage> model;
  MessageBuffer buffer = RandomBuffer(cmp, 6, 1500, &model);
  std::string serialized;
  buffer.Serialize(&serialized);

  MessageBuffer copied;
  ASSERT_TRUE(MessageBuffer::Deserialize(std::string_view(serialized), cmp, &copied).ok());
  ChunkString bytes(serialized.data(), serialized.size());
  MessageBuffer adopted;
  ASSERT_TRUE(MessageBuffer::Deserialize(std::move(bytes), cmp, &adopted).ok());
  ExpectSameAnswers(adopted, copied, model, cmp);
  std::string again;
  adopted.Serialize(&again);
  EXPECT_EQ(again, serialized);

  const Message extra{MessageType::kInsert, buffer.max_msn() + 1, {}, "k7", "new"};
  adopted.Append(extra, cmp);
  copied.Append(extra, cmp);
  EXPECT_EQ(MsnsWithKey(adopted, "k7", cmp), MsnsWithKey(copied, "k7", cmp));
}

TEST(MessageBufferTest, DeserializeAdoptingRejectsEveryTruncationAndKeepsTheBytes) {
  const Comparator& cmp = *BytewiseComparator();
  std::vector<OwnedMessage> model;
  MessageBuffer buffer = RandomBuffer(cmp, 7, 60, &model);
  std::string serialized;
  buffer.Serialize(&serialized);
  for (size_t n = 0; n < serialized.size(); ++n) {
    ChunkString bytes(serialized.data(), n);
    MessageBuffer out;
    Status s = MessageBuffer::Deserialize(std::move(bytes), cmp, &out);
    ASSERT_TRUE(s.IsCorruption()) << "length " << n << ": " << s.ToString();
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(std::string_view(bytes), std::string_view(serialized).substr(0, n))
        << "a failed Deserialize must leave `in` as it was";
  }
  ChunkString trailing(serialized.data(), serialized.size());
  trailing.push_back('x');
  EXPECT_TRUE(MessageBuffer::Deserialize(std::move(trailing), cmp, &buffer).IsCorruption());
  EXPECT_EQ(std::string_view(trailing), serialized + "x");
  EXPECT_EQ(buffer.count(), model.size()) << "a failed Deserialize must leave *out unchanged";
}

TEST(MessageBufferTest, DeserializeSurvivesRandomByteFlips) {
  const Comparator& cmp = *BytewiseComparator();
  std::vector<OwnedMessage> model;
  MessageBuffer buffer = RandomBuffer(cmp, 5, 60, &model);
  std::string serialized;
  buffer.Serialize(&serialized);
  std::mt19937_64 rng(6);
  int rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = serialized;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    MessageBuffer out;
    Status s = MessageBuffer::Deserialize(damaged, cmp, &out);
    if (!s.ok()) {
      ASSERT_TRUE(s.IsCorruption()) << s.ToString();
      ++rejected;
      continue;
    }
    // Accepted damage (e.g. in a value) must still give a consistent buffer.
    std::string again;
    out.Serialize(&again);
    MessageBuffer reread;
    ASSERT_TRUE(MessageBuffer::Deserialize(again, cmp, &reread).ok());
    ASSERT_EQ(Collect(reread), Collect(out));
  }
  EXPECT_GT(rejected, 1000);
}

TEST(MessageBufferTest, DeserializeRejectsMsnsOutOfOrder) {
  const Comparator& cmp = *BytewiseComparator();
  for (Msn second : {Msn{5}, Msn{4}}) {
    std::string serialized;
    PutVarint64(&serialized, 2);
    EncodeMessage(Message{MessageType::kInsert, 5, {}, "a", "v"}, &serialized);
    EncodeMessage(Message{MessageType::kInsert, second, {}, "b", "v"}, &serialized);
    MessageBuffer out;
    Status s = MessageBuffer::Deserialize(serialized, cmp, &out);
    EXPECT_TRUE(s.IsCorruption()) << second;
    EXPECT_NE(s.ToString().find("MSN"), std::string::npos) << s.ToString();
  }
  std::string zero;
  PutVarint64(&zero, 1);
  EncodeMessage(Message{MessageType::kInsert, 0, {}, "a", "v"}, &zero);
  MessageBuffer out;
  EXPECT_TRUE(MessageBuffer::Deserialize(zero, cmp, &out).IsCorruption());
}

TEST(MessageBufferTest, DeserializeRejectsHugeCount) {
  std::string serialized;
  PutVarint64(&serialized, uint64_t{1} << 60);
  EncodeMessage(Message{MessageType::kInsert, 5, {}, "a", "v"}, &serialized);
  MessageBuffer out;
  EXPECT_TRUE(MessageBuffer::Deserialize(serialized, *BytewiseComparator(), &out).IsCorruption());
}

}  // namespace
}  // namespace fern
