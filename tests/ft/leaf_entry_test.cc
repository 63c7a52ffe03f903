#include "ft/leaf_entry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ft/out_of_line_value.h"
#include "util/coding.h"

namespace fern {
namespace {

using Version = LeafEntryView::Version;

Version Value(TxnId writer, std::string_view value) { return {writer, false, value}; }
Version Deleted(TxnId writer) { return {writer, true, {}}; }
// A level filled in for an outer transaction when a nested one wrote below it.
Version Placeholder(TxnId writer, std::string_view value) { return {writer, false, value, true}; }

std::string Encode(std::string_view key, std::vector<Version> committed,
                   std::vector<Version> provisional) {
  std::string out;
  EncodeLeafEntry(key, committed, provisional, &out);
  EXPECT_EQ(out.size(), EncodedLeafEntrySize(key, committed, provisional));
  return out;
}

LeafEntryView ParseOrDie(std::string_view encoded) {
  LeafEntryView view;
  EXPECT_TRUE(LeafEntryView::Parse(encoded, &view));
  return view;
}

// What a reader sees through ReadVisible, with "<none>" for no row.
std::string Read(const LeafEntryView& view, const XidStack& reader,
                 const std::function<bool(TxnId)>& is_visible = {}) {
  StoredValue value;
  if (!view.ReadVisible(reader, is_visible, &value)) return "<none>";
  return std::string(value.bytes);
}

std::string Describe(const std::vector<Version>& versions) {
  std::string out;
  for (const auto& v : versions) {
    out += std::to_string(v.writer) + (v.placeholder ? "(placeholder)" : "") +
           (v.is_delete ? ":del " : ":" + std::string(v.value) + " ");
  }
  return out;
}

// ---- encoding ------------------------------------------------------------------------------

TEST(LeafEntryTest, EncodeParseRoundTrip) {
  const std::string long_value(1000, 'x');
  std::vector<Version> committed = {Value(kNoTxn, "oldest"), Deleted(12), Value(15, "")};
  std::vector<Version> provisional = {Placeholder(20, "outer"), Deleted(21), Value(22, long_value)};
  std::string encoded = Encode(std::string("k\0y", 3), committed, provisional);
  std::string with_trailer = encoded + "next entry";
  LeafEntryView view = ParseOrDie(with_trailer);
  EXPECT_EQ(view.key(), std::string_view("k\0y", 3));
  EXPECT_EQ(view.encoded_size(), encoded.size());
  EXPECT_EQ(view.encoded(), encoded);
  ASSERT_EQ(view.committed_count(), 3u);
  ASSERT_EQ(view.provisional_count(), 3u);
  for (size_t i = 0; i < committed.size(); ++i) {
    EXPECT_EQ(view.committed(i).writer, committed[i].writer) << i;
    EXPECT_EQ(view.committed(i).is_delete, committed[i].is_delete) << i;
    EXPECT_EQ(view.committed(i).value, committed[i].value) << i;
  }
  for (size_t i = 0; i < provisional.size(); ++i) {
    EXPECT_EQ(view.provisional(i).writer, provisional[i].writer) << i;
    EXPECT_EQ(view.provisional(i).is_delete, provisional[i].is_delete) << i;
    EXPECT_EQ(view.provisional(i).value, provisional[i].value) << i;
    EXPECT_EQ(view.provisional(i).placeholder, provisional[i].placeholder) << i;
  }
  EXPECT_EQ(view.newest_committed().writer, 15u);
  EXPECT_EQ(view.innermost_provisional().value, long_value);
  // ForEachVersion visits the same versions in stored order, committed first.
  std::vector<Version> visited_committed, visited_provisional;
  view.ForEachVersion([&](const Version& v, bool is_committed) {
    (is_committed ? visited_committed : visited_provisional).push_back(v);
  });
  EXPECT_EQ(Describe(visited_committed), Describe(committed));
  EXPECT_EQ(Describe(visited_provisional), Describe(provisional));

  std::string bare_encoded = Encode("", {}, {});
  LeafEntryView bare = ParseOrDie(bare_encoded);
  EXPECT_EQ(bare.key(), "");
  EXPECT_EQ(bare.committed_count(), 0u);
  EXPECT_EQ(bare.provisional_count(), 0u);
  EXPECT_TRUE(bare.IsEmpty());
}

TEST(LeafEntryTest, AutocommittedEncodingMatchesGeneralEncoding) {
  std::string fast;
  EncodeAutocommittedLeafEntry("key", "value", &fast);
  EXPECT_EQ(fast, Encode("key", {Value(kNoTxn, "value")}, {}));
}

TEST(LeafEntryTest, ParseRejectsEveryTruncation) {
  std::string encoded = Encode("key", {Value(kNoTxn, "a"), Deleted(3)}, {Value(9, "b")});
  for (size_t n = 0; n < encoded.size(); ++n) {
    LeafEntryView view;
    EXPECT_FALSE(LeafEntryView::Parse(std::string_view(encoded).substr(0, n), &view)) << n;
  }
}

// A version whose value is stored out of line, in block `block`.
Version OutOfLine(TxnId writer, BlockNum block, std::string* ref) {
  ref->clear();
  ValueRef{block, 100000}.EncodeTo(ref);
  return {writer, false, *ref, false, true};
}

TEST(LeafEntryTest, OutOfLineVersionsRoundTripAndTravelWithTheirValues) {
  std::string ref7, ref8;
  std::string encoded =
      Encode("k", {OutOfLine(kNoTxn, 7, &ref7), Value(3, "inline")}, {OutOfLine(9, 8, &ref8)});
  LeafEntryView view = ParseOrDie(encoded);
  EXPECT_TRUE(view.has_out_of_line());
  EXPECT_FALSE(ParseOrDie(Encode("k", {Value(1, "a")}, {Value(2, "b")})).has_out_of_line());
  EXPECT_TRUE(view.committed(0).out_of_line);
  EXPECT_EQ(view.committed(0).value, ref7);
  EXPECT_FALSE(view.committed(1).out_of_line);
  StoredValue seen;
  ASSERT_TRUE(view.ReadVisible(XidStack{9}, {}, &seen));
  EXPECT_TRUE(seen.out_of_line);
  EXPECT_EQ(seen.bytes, ref8);
  ASSERT_TRUE(view.LatestCommitted(&seen));
  EXPECT_FALSE(seen.out_of_line);
  EXPECT_EQ(seen.bytes, "inline");

  // A placeholder copies the flag with the value; a commit and a fold carry it on.
  LeafEntryVersions v;
  v.Assign(view);
  v.provisional.clear();
  v.Write(XidStack{20}, false, StoredValue{ref8, true}, kNoTxn);
  v.Write(XidStack{20, 21, 22}, false, "deep");
  ASSERT_EQ(v.provisional.size(), 3u);
  EXPECT_TRUE(v.provisional[1].placeholder);
  EXPECT_TRUE(v.provisional[1].out_of_line);
  EXPECT_EQ(v.provisional[1].value, ref8);
  v.Abort(XidStack{20, 21, 22});
  ASSERT_EQ(v.provisional.size(), 1u);
  v.Write(XidStack{20, 21}, false, StoredValue{ref7, true}, kNoTxn);
  v.Commit(XidStack{20, 21});  // folds the child's level into its parent's
  v.Commit(XidStack{20});
  ASSERT_EQ(v.committed.size(), 3u);
  EXPECT_TRUE(v.committed.back().out_of_line);
  EXPECT_EQ(v.committed.back().value, ref7);
  EXPECT_FALSE(v.committed.back().placeholder);
  v.Write(XidStack{}, true, StoredValue{ref7, true}, kNoTxn);  // a delete stores no value
  EXPECT_FALSE(v.committed.back().out_of_line);
  EXPECT_TRUE(v.committed.back().value.empty());
}

TEST(LeafEntryTest, ParseRejectsMalformedFields) {
  LeafEntryView view;
  // Unknown flag bits. Layout: key (1 + 1), counts (1 + 1), writer (8), flags.
  std::string bad_flags = Encode("k", {Value(kNoTxn, "v")}, {});
  bad_flags[12] = 0x08;
  EXPECT_FALSE(LeafEntryView::Parse(bad_flags, &view));
  // Out of line: the value must be a reference, and a delete has none.
  bad_flags[12] = 0x04;
  EXPECT_FALSE(LeafEntryView::Parse(bad_flags, &view));
  std::string deleted = Encode("k", {Deleted(kNoTxn)}, {});
  deleted[12] = 0x05;
  EXPECT_FALSE(LeafEntryView::Parse(deleted, &view));
  // Only provisional versions may be placeholders.
  bad_flags[12] = 0x02;
  EXPECT_FALSE(LeafEntryView::Parse(bad_flags, &view));
  // A provisional version must have a writer.
  EXPECT_FALSE(LeafEntryView::Parse(Encode("k", {}, {Value(kNoTxn, "v")}), &view));
  // At most kMaxXidDepth provisional versions.
  std::string deep;
  PutLengthPrefixed(&deep, "k");
  PutVarint32(&deep, 0);
  PutVarint32(&deep, kMaxXidDepth + 1);
  for (size_t i = 0; i <= kMaxXidDepth; ++i) {
    PutFixed64(&deep, i + 1);
    PutFixed8(&deep, 1);
  }
  EXPECT_FALSE(LeafEntryView::Parse(deep, &view));
  // A count far beyond the bytes present.
  std::string huge;
  PutLengthPrefixed(&huge, "k");
  PutVarint32(&huge, 0xffffffff);
  PutVarint32(&huge, 0);
  EXPECT_FALSE(LeafEntryView::Parse(huge, &view));
}

TEST(LeafEntryTest, ParseSurvivesRandomByteFlips) {
  std::string encoded = Encode("some key", {Value(kNoTxn, "first"), Deleted(40), Value(41, "x")},
                               {Value(50, "p0"), Deleted(51)});
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = encoded;
    damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    LeafEntryView view;
    if (!LeafEntryView::Parse(damaged, &view)) continue;
    // Whatever parses must be readable within its bytes.
    ASSERT_LE(view.encoded_size(), damaged.size());
    for (size_t i = 0; i < view.committed_count(); ++i) (void)view.committed(i);
    for (size_t i = 0; i < view.provisional_count(); ++i) (void)view.provisional(i);
    StoredValue value;
    (void)view.ReadVisible(XidStack{50}, {}, &value);
    (void)view.IsEmpty();
  }
}

// ---- reading -------------------------------------------------------------------------------

TEST(LeafEntryTest, LatestCommittedIsTheNewestCommittedValue) {
  StoredValue value;
  EXPECT_FALSE(ParseOrDie(Encode("k", {}, {Value(5, "p")})).LatestCommitted(&value));
  EXPECT_FALSE(ParseOrDie(Encode("k", {Value(1, "a"), Deleted(2)}, {})).LatestCommitted(&value));
  std::string encoded = Encode("k", {Deleted(1), Value(2, "b")}, {Deleted(3)});
  ASSERT_TRUE(ParseOrDie(encoded).LatestCommitted(&value));
  EXPECT_EQ(value.bytes, "b");
}

TEST(LeafEntryTest, AutocommittedVersionsAreVisibleWithoutAsking) {
  std::string encoded = Encode("k", {Value(7, "by seven"), Value(kNoTxn, "auto")}, {});
  LeafEntryView view = ParseOrDie(encoded);
  auto nothing_visible = [](TxnId writer) {
    EXPECT_NE(writer, kNoTxn) << "is_visible consulted for an autocommitted version";
    return false;
  };
  EXPECT_EQ(Read(view, {}, nothing_visible), "auto");
}

TEST(LeafEntryTest, SnapshotSeesNewestVisibleCommittedVersion) {
  std::string encoded = Encode("k", {Value(10, "ten"), Value(20, "twenty"), Deleted(30)}, {});
  LeafEntryView view = ParseOrDie(encoded);
  EXPECT_EQ(Read(view, {}, [](TxnId w) { return w < 15; }), "ten");
  EXPECT_EQ(Read(view, {}, [](TxnId w) { return w < 25; }), "twenty");
  EXPECT_EQ(Read(view, {}, [](TxnId w) { return w != 20; }), "<none>");  // sees the delete
  EXPECT_EQ(Read(view, {}, [](TxnId w) { return w == 10 || w == 20; }), "twenty");
  EXPECT_EQ(Read(view, {}, [](TxnId) { return false; }), "<none>");
  EXPECT_EQ(Read(view, {}), "<none>");  // an empty function accepts every writer
  EXPECT_EQ(Read(ParseOrDie(Encode("k", {Value(10, "ten")}, {})), XidStack{99}), "ten");
}

TEST(LeafEntryTest, WritersFamilySeesItsInnermostProvisionalVersion) {
  std::string encoded =
      Encode("k", {Value(kNoTxn, "committed")}, {Value(50, "parent"), Value(51, "child")});
  LeafEntryView view = ParseOrDie(encoded);
  EXPECT_EQ(Read(view, XidStack{50, 51}), "child");
  // A parent reads after its child finished: the child's level is a committed child's.
  EXPECT_EQ(Read(view, XidStack{50}), "child");
  EXPECT_EQ(Read(view, XidStack{50, 52}), "child");
  // Other readers see only committed versions.
  EXPECT_EQ(Read(view, {}), "committed");
  EXPECT_EQ(Read(view, XidStack{60}), "committed");
  EXPECT_EQ(Read(view, XidStack{51}), "committed");

  std::string deleted_encoded = Encode("k", {Value(kNoTxn, "c")}, {Deleted(50)});
  LeafEntryView deleted = ParseOrDie(deleted_encoded);
  EXPECT_EQ(Read(deleted, XidStack{50}), "<none>");
  EXPECT_EQ(Read(deleted, XidStack{60}), "c");
}

// A snapshot writer's conflict check: the newest committed version is hidden from the
// snapshot, unless it is autocommitted without a stamp or the writer's family has written
// the row since.
TEST(LeafEntryTest, NewestCommittedHiddenFromASnapshot) {
  auto before_20 = [](TxnId w) { return w < 20; };
  const std::string newer = Encode("k", {Value(10, "ten"), Deleted(30)}, {});
  EXPECT_TRUE(ParseOrDie(newer).NewestCommittedHiddenFrom(XidStack{50}, before_20));
  EXPECT_FALSE(
      ParseOrDie(newer).NewestCommittedHiddenFrom(XidStack{50}, [](TxnId) { return true; }));
  const std::string older = Encode("k", {Value(10, "ten"), Value(15, "fifteen")}, {});
  EXPECT_FALSE(ParseOrDie(older).NewestCommittedHiddenFrom(XidStack{50}, before_20));
  const std::string unstamped = Encode("k", {Value(30, "thirty"), Value(kNoTxn, "auto")}, {});
  EXPECT_FALSE(ParseOrDie(unstamped).NewestCommittedHiddenFrom(XidStack{50}, before_20));
  const std::string own = Encode("k", {Value(30, "thirty")}, {Value(50, "mine")});
  EXPECT_FALSE(ParseOrDie(own).NewestCommittedHiddenFrom(XidStack{50, 51}, before_20));
  EXPECT_TRUE(ParseOrDie(own).NewestCommittedHiddenFrom(XidStack{60}, before_20));
  // Nothing committed, or a reader that sees every version.
  EXPECT_FALSE(ParseOrDie(Encode("k", {}, {Value(60, "v")}))
                   .NewestCommittedHiddenFrom(XidStack{50}, before_20));
  EXPECT_FALSE(ParseOrDie(newer).NewestCommittedHiddenFrom(XidStack{50}, {}));
}

TEST(LeafEntryTest, IsEmptyWhenNoReaderCanSeeARow) {
  EXPECT_TRUE(ParseOrDie(Encode("k", {}, {})).IsEmpty());
  EXPECT_TRUE(ParseOrDie(Encode("k", {Deleted(kNoTxn)}, {})).IsEmpty());
  EXPECT_TRUE(ParseOrDie(Encode("k", {}, {Deleted(5), Deleted(6)})).IsEmpty());
  EXPECT_TRUE(ParseOrDie(Encode("k", {Deleted(3)}, {Deleted(5)})).IsEmpty());
  EXPECT_FALSE(ParseOrDie(Encode("k", {Value(kNoTxn, "")}, {})).IsEmpty());
  EXPECT_FALSE(ParseOrDie(Encode("k", {Value(1, "a"), Deleted(2)}, {})).IsEmpty());
  EXPECT_FALSE(ParseOrDie(Encode("k", {Deleted(2)}, {Value(5, "p")})).IsEmpty());
  EXPECT_FALSE(ParseOrDie(Encode("k", {}, {Deleted(5), Value(6, "c")})).IsEmpty());
}

// ---- version stacks ------------------------------------------------------------------------

LeafEntryVersions Versions(std::vector<Version> committed, std::vector<Version> provisional) {
  LeafEntryVersions v;
  v.committed = std::move(committed);
  v.provisional = std::move(provisional);
  return v;
}

void ExpectStacks(const LeafEntryVersions& v, const std::vector<Version>& committed,
                  const std::vector<Version>& provisional) {
  EXPECT_EQ(Describe(v.committed), Describe(committed));
  EXPECT_EQ(Describe(v.provisional), Describe(provisional));
}

TEST(LeafEntryVersionsTest, AssignCopiesTheView) {
  std::string encoded = Encode("k", {Value(1, "a"), Deleted(2)}, {Value(5, "p")});
  LeafEntryVersions v = Versions({Value(9, "stale")}, {});
  v.Assign(ParseOrDie(encoded));
  ExpectStacks(v, {Value(1, "a"), Deleted(2)}, {Value(5, "p")});
}

TEST(LeafEntryVersionsTest, AutocommittedWritePushesACommittedVersion) {
  LeafEntryVersions v = Versions({Value(3, "old")}, {Value(7, "p")});
  v.Write({}, false, "new");
  ExpectStacks(v, {Value(3, "old"), Value(kNoTxn, "new")}, {Value(7, "p")});
  v.CollectGarbage(kNoTxn);
  ExpectStacks(v, {Value(kNoTxn, "new")}, {Value(7, "p")});
}

TEST(LeafEntryVersionsTest, NestedWriteFillsOuterLevelsWithWhatTheySee) {
  LeafEntryVersions v = Versions({Value(kNoTxn, "base")}, {});
  v.Write(XidStack{10, 11, 12}, false, "grandchild");
  ExpectStacks(v, {Value(kNoTxn, "base")},
               {Placeholder(10, "base"), Placeholder(11, "base"), Value(12, "grandchild")});
  // The grandchild aborts: the levels its write filled in go too, and its ancestors see what
  // they saw before (nothing is left for the family's commit to resolve).
  v.Abort(XidStack{10, 11, 12});
  ExpectStacks(v, {Value(kNoTxn, "base")}, {});
  StoredValue seen;
  ASSERT_TRUE(v.WriterSees(XidStack{10, 11}, &seen));
  EXPECT_EQ(seen.bytes, "base");

  LeafEntryVersions absent;
  absent.Write(XidStack{10, 11}, false, "child");
  Version deleted_placeholder = Deleted(10);
  deleted_placeholder.placeholder = true;
  ExpectStacks(absent, {}, {deleted_placeholder, Value(11, "child")});
  absent.Abort(XidStack{10, 11});
  EXPECT_TRUE(absent.provisional.empty());
}

TEST(LeafEntryVersionsTest, AbortKeepsTheRealWritesOfOuterLevels) {
  // The parent wrote; a grandchild under a child that did not write aborts.
  LeafEntryVersions v = Versions({Value(kNoTxn, "base")}, {Value(10, "parent")});
  v.Write(XidStack{10, 11, 12}, false, "grandchild");
  ExpectStacks(v, {Value(kNoTxn, "base")},
               {Value(10, "parent"), Placeholder(11, "parent"), Value(12, "grandchild")});
  v.Abort(XidStack{10, 11, 12});
  ExpectStacks(v, {Value(kNoTxn, "base")}, {Value(10, "parent")});
  // A child that wrote and then had a grandchild abort keeps its own write.
  v.Write(XidStack{10, 11}, false, "child");
  v.Write(XidStack{10, 11, 12}, true, {});
  v.Abort(XidStack{10, 11, 12});
  ExpectStacks(v, {Value(kNoTxn, "base")}, {Value(10, "parent"), Value(11, "child")});
  // The child commits: its write becomes the parent's, a real write.
  v.Commit(XidStack{10, 11});
  ExpectStacks(v, {Value(kNoTxn, "base")}, {Value(10, "child")});
  v.Commit(XidStack{10});
  ExpectStacks(v, {Value(kNoTxn, "base"), Value(10, "child")}, {});
}

TEST(LeafEntryVersionsTest, WriteFoldsAFinishedChildIntoItsParent) {
  // Child 11 committed without a message; sibling 12 now writes.
  LeafEntryVersions v = Versions({}, {Value(10, "parent"), Value(11, "child")});
  v.Write(XidStack{10, 12}, false, "sibling");
  ExpectStacks(v, {}, {Value(10, "child"), Value(12, "sibling")});
  v.Abort(XidStack{10, 12});
  ExpectStacks(v, {}, {Value(10, "child")});
  // The parent overwrites its own level.
  v.Write(XidStack{10}, true, {});
  ExpectStacks(v, {}, {Deleted(10)});
}

TEST(LeafEntryVersionsTest, WriteByAnotherFamilyReplacesProvisionalVersions) {
  LeafEntryVersions v = Versions({Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "q")});
  v.Write(XidStack{20}, false, "other");
  ExpectStacks(v, {Value(kNoTxn, "c")}, {Value(20, "other")});
}

TEST(LeafEntryVersionsTest, CommitPromotesTheInnermostVersion) {
  LeafEntryVersions v = Versions({Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "child")});
  v.Commit(XidStack{20});  // not this family's
  ExpectStacks(v, {Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "child")});
  v.Commit(XidStack{10});
  ExpectStacks(v, {Value(kNoTxn, "c"), Value(10, "child")}, {});
  v.Commit(XidStack{10});  // nothing left to commit
  ExpectStacks(v, {Value(kNoTxn, "c"), Value(10, "child")}, {});
}

TEST(LeafEntryVersionsTest, NestedCommitFoldsTheChildIntoItsParent) {
  LeafEntryVersions v = Versions({}, {Value(10, "p"), Value(11, "c"), Value(12, "g")});
  v.Commit(XidStack{10, 11, 12});
  ExpectStacks(v, {}, {Value(10, "p"), Value(11, "g")});
  v.Commit(XidStack{10, 11});
  ExpectStacks(v, {}, {Value(10, "g")});
  v.Commit(XidStack{10, 13});  // a child that did not write here
  ExpectStacks(v, {}, {Value(10, "g")});
}

TEST(LeafEntryVersionsTest, AbortRemovesOnlyTheAbortedLevels) {
  LeafEntryVersions v = Versions({Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "child")});
  v.Abort(XidStack{10, 12});  // a child that did not write here
  ExpectStacks(v, {Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "child")});
  v.Abort(XidStack{20});  // not this family's
  ExpectStacks(v, {Value(kNoTxn, "c")}, {Value(10, "p"), Value(11, "child")});
  v.Abort(XidStack{10, 11});
  ExpectStacks(v, {Value(kNoTxn, "c")}, {Value(10, "p")});
  v.Abort(XidStack{10});
  ExpectStacks(v, {Value(kNoTxn, "c")}, {});
}

TEST(LeafEntryVersionsTest, GarbageCollectionKeepsWhatSnapshotsCanSee) {
  std::vector<Version> history = {Value(kNoTxn, "a"), Value(30, "b"), Value(40, "c"),
                                  Value(60, "d")};
  LeafEntryVersions v = Versions(history, {});
  v.CollectGarbage(50);  // snapshots may need "c" (40 < 50) and newer
  ExpectStacks(v, {Value(40, "c"), Value(60, "d")}, {});
  v = Versions(history, {});
  v.CollectGarbage(20);  // only kNoTxn's "a" is older than every snapshot
  ExpectStacks(v, history, {});
  v = Versions(history, {});
  v.CollectGarbage(kNoTxn);
  ExpectStacks(v, {Value(60, "d")}, {});
  // An oldest delete reads as no row, like no version at all.
  v = Versions({Value(10, "x"), Deleted(30), Value(60, "y")}, {});
  v.CollectGarbage(50);
  ExpectStacks(v, {Value(60, "y")}, {});
  v = Versions({Value(10, "x"), Deleted(60)}, {Value(70, "p")});
  v.CollectGarbage(kNoTxn);
  ExpectStacks(v, {}, {Value(70, "p")});
}

// Snapshots as TxnManager pictures them: a next id and the roots live when each was taken.
class FakeReaders final : public LiveReaders {
 public:
  struct Snap {
    TxnId next_id;
    std::vector<TxnId> live;
  };
  FakeReaders(TxnId next_id, std::vector<TxnId> live_roots, std::vector<Snap> snapshots)
      : next_id_(next_id), live_roots_(std::move(live_roots)), snapshots_(std::move(snapshots)) {}
  bool MaybeHidden(TxnId writer) const override {
    if (writer == kNoTxn) return false;
    return writer >= next_id_ || Contains(live_roots_, writer);
  }
  size_t snapshot_count() const override { return snapshots_.size(); }
  bool Sees(size_t i, TxnId writer) const override {
    if (writer == kNoTxn) return true;
    return writer < snapshots_[i].next_id && !Contains(snapshots_[i].live, writer);
  }

 private:
  static bool Contains(const std::vector<TxnId>& ids, TxnId id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }
  TxnId next_id_;
  std::vector<TxnId> live_roots_;
  std::vector<Snap> snapshots_;
};

// What each pictured snapshot, and a reader beginning after every live writer ended, sees.
std::vector<std::string> WhatReadersSee(const LeafEntryVersions& v, const FakeReaders& readers) {
  std::string encoded = Encode("k", v.committed, v.provisional);
  LeafEntryView view = ParseOrDie(encoded);
  std::vector<std::string> seen;
  for (size_t i = 0; i < readers.snapshot_count(); ++i) {
    seen.push_back(Read(view, {}, [&](TxnId w) { return readers.Sees(i, w); }));
  }
  seen.push_back(Read(view, {}));
  return seen;
}

TEST(LeafEntryVersionsTest, KeepVisibleKeepsWhatEachSnapshotSees) {
  // A snapshot taken before 20 (next id 20), one taken while 35 was live (next id 50), none
  // later; 70 is live now, 80 began after the picture.
  FakeReaders readers(75, {70}, {{20, {}}, {50, {35}}});
  LeafEntryVersions v =
      Versions({Value(kNoTxn, "a"), Value(20, "b"), Value(30, "c"), Value(35, "d"), Value(40, "e"),
                Value(60, "f"), Value(65, "g"), Value(70, "h"), Value(80, "i")},
               {Value(90, "p")});
  std::vector<std::string> before = WhatReadersSee(v, readers);
  v.KeepVisible(readers);
  // "a" for the first snapshot, "e" for the second (35 was live in it), "g" is the newest
  // every new reader sees, "h" and "i" may still be hidden from new readers.
  ExpectStacks(v,
               {Value(kNoTxn, "a"), Value(40, "e"), Value(65, "g"), Value(70, "h"), Value(80, "i")},
               {Value(90, "p")});
  EXPECT_EQ(WhatReadersSee(v, readers), before);

  // Every writer possibly hidden: nothing can go.
  std::vector<Version> all_live = {Value(70, "x"), Value(80, "y")};
  v = Versions(all_live, {});
  v.KeepVisible(readers);
  ExpectStacks(v, all_live, {});

  // No snapshot: the newest settled version and newer; an oldest delete goes.
  FakeReaders none(100, {}, {});
  v = Versions({Value(10, "x"), Deleted(30), Value(60, "y")}, {});
  v.KeepVisible(none);
  ExpectStacks(v, {Value(60, "y")}, {});
  v = Versions({Value(10, "x"), Deleted(60)}, {});
  v.KeepVisible(none);
  ExpectStacks(v, {}, {});
}

// A key absent from an old snapshot, then written and deleted by others: the lone delete
// stays, so the snapshot's writer still meets the conflict (NewestCommittedHiddenFrom).
TEST(LeafEntryVersionsTest, ALoneDeleteHiddenFromASnapshotIsKept) {
  FakeReaders readers(20, {}, {{5, {}}});
  LeafEntryVersions v = Versions(
      {Value(10, "a"), Value(11, "b"), Value(12, "c"), Value(13, "d"), Value(14, "e"), Deleted(15)},
      {});
  v.KeepVisible(readers);
  ExpectStacks(v, {Deleted(15)}, {});
  EXPECT_FALSE(v.IsEmpty());
  std::string encoded = Encode("k", v.committed, v.provisional);
  EXPECT_TRUE(ParseOrDie(encoded).NewestCommittedHiddenFrom(
      {}, [&](TxnId w) { return readers.Sees(0, w); }));
  // The horizon rule keeps it too while a snapshot older than its writer lives.
  v = Versions({Deleted(15)}, {});
  v.CollectGarbage(5);
  ExpectStacks(v, {Deleted(15)}, {});
  // Once every reader sees it, it goes and the entry is empty.
  v.CollectGarbage(16);
  EXPECT_TRUE(v.committed.empty());
  EXPECT_TRUE(v.IsEmpty());
  v = Versions({Deleted(15)}, {});
  v.KeepVisible(FakeReaders(20, {}, {{16, {}}}));
  EXPECT_TRUE(v.IsEmpty());
}

TEST(LeafEntryVersionsTest, KeepVisibleChangesNoReadersViewOnRandomHistories) {
  std::mt19937_64 rng(20261205);
  for (int round = 0; round < 2000; ++round) {
    // Ids 1..60 in order; each is a writer, maybe live in the picture; snapshots at random
    // points see the writers below their next id that were not live then.
    const TxnId next_id = 61;
    std::vector<TxnId> live_now;
    std::vector<FakeReaders::Snap> snaps;
    std::vector<Version> history;
    std::vector<std::string> values;
    values.reserve(64);
    int versions = 1 + static_cast<int>(rng() % 12);
    TxnId writer = 0;
    for (int i = 0; i < versions; ++i) {
      writer += 1 + rng() % 5;
      if (writer >= next_id) break;
      values.push_back("v" + std::to_string(i));
      bool del = rng() % 5 == 0;
      history.push_back(del ? Deleted(writer)
                            : Value(rng() % 7 == 0 ? kNoTxn : writer, values.back()));
      if (rng() % 6 == 0) live_now.push_back(writer);
    }
    int snapshot_count = static_cast<int>(rng() % 4);
    for (int i = 0; i < snapshot_count; ++i) {
      FakeReaders::Snap snap{1 + rng() % next_id, {}};
      for (const Version& h : history) {
        if (h.writer == kNoTxn || h.writer >= snap.next_id) continue;
        // A writer live now was live in every earlier snapshot that could know it.
        bool live = std::find(live_now.begin(), live_now.end(), h.writer) != live_now.end();
        if (live || rng() % 4 == 0) snap.live.push_back(h.writer);
      }
      snaps.push_back(snap);
    }
    FakeReaders readers(next_id, live_now, snaps);
    LeafEntryVersions v = Versions(history, {});
    std::vector<std::string> before = WhatReadersSee(v, readers);
    v.KeepVisible(readers);
    ASSERT_EQ(WhatReadersSee(v, readers), before) << "round " << round;
    ASSERT_LE(v.committed.size(), history.size());
  }
}

}  // namespace
}  // namespace fern
