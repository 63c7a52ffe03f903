#include "ft/basement.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "util/coding.h"
#include "util/strings.h"

namespace fern {
namespace {

// Appends the extra to the old value (creating the row if absent); the extra "delete"
// deletes the row.
std::optional<std::string> AppendUpdate(std::string_view key, const std::string_view* old_value,
                                        std::string_view extra) {
  if (extra == "delete") return std::nullopt;
  std::string result = old_value != nullptr ? std::string(*old_value) : std::string();
  result.append(extra);
  return result;
}

// Value blocks in memory; counts what the basement asks of it and catches double frees.
class FakeValueStore final : public ValueStore {
 public:
  size_t threshold = 6;
  bool fail_writes = false;
  bool fail_reads = false;
  bool corrupt_reads = false;  // every read says Corruption...
  bool damaged = true;         // ...and the block is damaged as stored (else it verifies)
  std::map<BlockNum, std::string> blocks;  // live ones
  int writes = 0;
  int frees = 0;

  size_t out_of_line_threshold() const override { return threshold; }
  Status Write(std::string_view value, std::string* ref) override {
    if (fail_writes) return Status::IOError("injected write failure");
    const BlockNum b = next_++;
    blocks[b] = std::string(value);
    ref->clear();
    ValueRef{b, value.size()}.EncodeTo(ref);
    writes++;
    return Status::OK();
  }
  void Free(std::string_view ref) override {
    ValueRef r;
    ASSERT_TRUE(ValueRef::Decode(ref, &r));
    EXPECT_EQ(blocks.erase(r.block), 1u) << "block " << r.block << " freed twice or never written";
    frees++;
  }
  Status Read(std::string_view ref, std::string* value) const override {
    if (fail_reads) return Status::IOError("injected read failure");
    if (corrupt_reads) return Status::Corruption("injected damage");
    ValueRef r;
    if (!ValueRef::Decode(ref, &r)) return Status::Corruption("bad reference");
    auto it = blocks.find(r.block);
    if (it == blocks.end()) return Status::Corruption(StrCat("block ", r.block, " is free"));
    *value = it->second;
    return Status::OK();
  }
  bool IsDamaged(std::string_view ref) const override {
    ValueRef r;
    return corrupt_reads && damaged && ValueRef::Decode(ref, &r) && blocks.count(r.block) == 1;
  }

 private:
  BlockNum next_ = 1;
};

// The value a stored one stands for: itself, or what `values` holds for its reference.
std::string ValueOf(const StoredValue& stored, const ValueStore* values) {
  if (!stored.out_of_line) return std::string(stored.bytes);
  std::string value;
  if (values == nullptr) return "<out of line>";
  Status s = values->Read(stored.bytes, &value);
  return s.ok() ? value : s.ToString();
}

class BasementTest : public ::testing::Test {
 protected:
  BasementTest() {
    ctx_.cmp = BytewiseComparator();
    ctx_.update = &update_;
  }

  // Applies from now on with values_ as the store the basement owns values in.
  void StoreValuesOutOfLine() {
    ctx_.values = &values_;
    ctx_.owns_values = true;
  }
  // The value blocks the entries reference, each once.
  std::set<BlockNum> ReferencedBlocks() const {
    std::set<BlockNum> out;
    for (size_t i = 0; i < basement_.count(); ++i) {
      LeafEntryView entry = basement_.entry(i);
      for (size_t v = 0; v < entry.committed_count() + entry.provisional_count(); ++v) {
        LeafEntryView::Version version = v < entry.committed_count()
                                             ? entry.committed(v)
                                             : entry.provisional(v - entry.committed_count());
        ValueRef ref;
        if (version.out_of_line && ValueRef::Decode(version.value, &ref)) out.insert(ref.block);
      }
    }
    return out;
  }
  // Every live block is referenced and every referenced block is live.
  void ExpectNoLeakedOrDanglingBlocks() const {
    std::set<BlockNum> live;
    for (const auto& [block, value] : values_.blocks) live.insert(block);
    EXPECT_EQ(ReferencedBlocks(), live);
  }

  void Insert(std::string_view key, std::string_view value, XidStack xids = {}) {
    Send(MessageType::kInsert, key, value, xids);
  }
  void Delete(std::string_view key, XidStack xids = {}) {
    Send(MessageType::kDelete, key, {}, xids);
  }
  void Update(std::string_view key, std::string_view extra, XidStack xids = {}) {
    Send(MessageType::kUpdate, key, extra, xids);
  }
  void Commit(std::string_view key, XidStack xids) { Send(MessageType::kCommitAny, key, {}, xids); }
  void Abort(std::string_view key, XidStack xids) { Send(MessageType::kAbortAny, key, {}, xids); }
  void Send(MessageType type, std::string_view key, std::string_view value, XidStack xids) {
    basement_.Apply(Message{type, ++msn_, xids, key, value}, ctx_);
  }

  // The newest committed value of key, or "<none>".
  std::string Committed(std::string_view key) const {
    size_t i;
    StoredValue value;
    if (!basement_.Find(key, *ctx_.cmp, &i) || !basement_.entry(i).LatestCommitted(&value)) {
      return "<none>";
    }
    return ValueOf(value, ctx_.values);
  }
  // What `reader` sees under read committed, or "<none>".
  std::string ReadBy(std::string_view key, const XidStack& reader) const {
    size_t i;
    StoredValue value;
    if (!basement_.Find(key, *ctx_.cmp, &i) ||
        !basement_.entry(i).ReadVisible(reader, {}, &value)) {
      return "<none>";
    }
    return ValueOf(value, ctx_.values);
  }
  std::map<std::string, std::string> Contents() const { return ContentsOf(basement_, ctx_.values); }
  static std::map<std::string, std::string> ContentsOf(const Basement& basement,
                                                       const ValueStore* values = nullptr) {
    std::map<std::string, std::string> out;
    for (size_t i = 0; i < basement.count(); ++i) {
      StoredValue value;
      EXPECT_TRUE(basement.entry(i).LatestCommitted(&value)) << basement.key(i);
      EXPECT_EQ(basement.entry(i).key(), basement.key(i));
      out[std::string(basement.key(i))] = ValueOf(value, values);
    }
    return out;
  }
  static void ExpectSorted(const Basement& basement) {
    for (size_t i = 1; i < basement.count(); ++i) {
      ASSERT_LT(BytewiseComparator()->Compare(basement.key(i - 1), basement.key(i)), 0) << i;
    }
  }
  std::string Serialized() const {
    std::string out;
    basement_.Serialize(&out);
    return out;
  }

  // Random transactional writes, commits, aborts and broadcast updates against a model;
  // with values out of line, also checks that no value block leaks or dangles.
  void RunRandomTransactions(uint64_t seed);

  UpdateFunction update_ = AppendUpdate;
  FakeValueStore values_;
  ApplyContext ctx_;
  Basement basement_;
  Msn msn_ = 0;
};

TEST_F(BasementTest, EmptyBasement) {
  EXPECT_EQ(basement_.count(), 0u);
  EXPECT_EQ(basement_.max_msn(), 0u);
  size_t i = 99;
  EXPECT_FALSE(basement_.Find("a", *ctx_.cmp, &i));
  EXPECT_EQ(i, 0u);
  EXPECT_EQ(basement_.serialized_bytes(), Serialized().size());
}

TEST_F(BasementTest, RandomAutocommittedMessagesMatchMapModel) {
  std::mt19937_64 rng(21);
  std::map<std::string, std::string> model;
  for (int step = 0; step < 30000; ++step) {
    std::string key = "key" + std::to_string(rng() % 400);
    int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      std::string value(rng() % 40, static_cast<char>('a' + rng() % 26));
      Insert(key, value);
      model[key] = value;
    } else if (op < 8) {
      Delete(key);
      model.erase(key);
    } else {
      std::string extra = rng() % 5 == 0 ? "delete" : std::string(1 + rng() % 3, 'u');
      Update(key, extra);
      auto it = model.find(key);
      std::string_view old_value = it == model.end() ? std::string_view() : it->second;
      std::optional<std::string> result =
          AppendUpdate(key, it == model.end() ? nullptr : &old_value, extra);
      if (result.has_value()) {
        model[key] = *result;
      } else {
        model.erase(key);
      }
    }
    if (step % 997 == 0) {
      ASSERT_EQ(Contents(), model) << "after step " << step;
      ExpectSorted(basement_);
      // Compaction keeps garbage at most half the arena (once it is 4 KiB).
      ASSERT_LE(basement_.garbage_bytes(), std::max<size_t>(4096, basement_.live_bytes()));
    }
  }
  EXPECT_EQ(Contents(), model);
  EXPECT_EQ(basement_.max_msn(), msn_);
  EXPECT_EQ(basement_.serialized_bytes(), Serialized().size());
}

TEST_F(BasementTest, ApplyingAMessageTwiceChangesNothing) {
  Insert("a", "1");
  Insert("b", "2", XidStack{10});
  Message update{MessageType::kUpdate, ++msn_, {}, "a", "+"};
  basement_.Apply(update, ctx_);
  std::string once = Serialized();
  basement_.Apply(update, ctx_);
  EXPECT_EQ(Serialized(), once);
  EXPECT_EQ(Committed("a"), "1+");
  // An older message is ignored too.
  basement_.Apply(Message{MessageType::kDelete, 1, {}, "a", ""}, ctx_);
  basement_.Apply(Message{MessageType::kCommitAny, 2, XidStack{10}, "b", ""}, ctx_);
  EXPECT_EQ(Serialized(), once);
  EXPECT_EQ(basement_.max_msn(), msn_);
  basement_.set_max_msn(100);
  EXPECT_EQ(basement_.max_msn(), 100u);
}

TEST_F(BasementTest, ProvisionalInsertThenCommit) {
  Insert("k", "old");
  Insert("k", "new", XidStack{10});
  EXPECT_EQ(ReadBy("k", XidStack{10}), "new");
  EXPECT_EQ(ReadBy("k", XidStack{11}), "old");
  EXPECT_EQ(ReadBy("k", {}), "old");
  Update("k", "+", XidStack{10});  // sees its own provisional value
  EXPECT_EQ(ReadBy("k", XidStack{10}), "new+");
  Commit("k", XidStack{10});
  EXPECT_EQ(Committed("k"), "new+");
  EXPECT_EQ(ReadBy("k", {}), "new+");
  LeafEntryView entry = basement_.entry(0);
  EXPECT_EQ(entry.provisional_count(), 0u);
  ASSERT_EQ(entry.committed_count(), 1u) << "no live snapshot: older versions are collected";
  EXPECT_EQ(entry.newest_committed().writer, 10u);
}

TEST_F(BasementTest, ProvisionalInsertThenAbort) {
  Insert("fresh", "p", XidStack{10});
  Insert("kept", "old");
  Delete("kept", XidStack{10});
  EXPECT_EQ(ReadBy("kept", XidStack{10}), "<none>");
  EXPECT_EQ(ReadBy("kept", {}), "old");
  EXPECT_EQ(basement_.count(), 2u);
  Abort("fresh", XidStack{10});
  Abort("kept", XidStack{10});
  EXPECT_EQ(basement_.count(), 1u) << "an aborted insert of a new key leaves no entry";
  EXPECT_EQ(Committed("kept"), "old");
  EXPECT_EQ(ReadBy("kept", XidStack{10}), "old");
  // Commit and abort of keys that are absent are no-ops.
  Commit("missing", XidStack{10});
  Abort("missing", XidStack{10});
  EXPECT_EQ(basement_.count(), 1u);
}

TEST_F(BasementTest, ProvisionalDeleteOfAbsentKeyLeavesNoEntry) {
  Delete("nothing", XidStack{10});
  EXPECT_EQ(basement_.count(), 0u);
}

TEST_F(BasementTest, NestedChildAbortRestoresParentView) {
  Insert("k", "base");
  Insert("k", "parent", XidStack{10});
  Insert("k", "child", XidStack{10, 11});
  EXPECT_EQ(ReadBy("k", XidStack{10, 11}), "child");
  Abort("k", XidStack{10, 11});
  EXPECT_EQ(ReadBy("k", XidStack{10}), "parent");
  Insert("k", "child2", XidStack{10, 12});
  // Child 12 commits without a message; the parent then commits.
  Commit("k", XidStack{10});
  EXPECT_EQ(Committed("k"), "child2");
}

TEST_F(BasementTest, BroadcastUpdateAppliesToEveryRow) {
  Insert("a", "1");
  Insert("b", "2");
  Insert("c", "3");
  Delete("b");
  Send(MessageType::kUpdateBroadcast, "", "!", {});
  EXPECT_EQ(Contents(), (std::map<std::string, std::string>{{"a", "1!"}, {"c", "3!"}}));
  Send(MessageType::kUpdateBroadcast, "", "x", XidStack{10});
  EXPECT_EQ(ReadBy("a", XidStack{10}), "1!x");
  EXPECT_EQ(ReadBy("a", {}), "1!");
  Abort("a", XidStack{10});
  Abort("c", XidStack{10});
  Send(MessageType::kUpdateBroadcast, "", "delete", {});
  EXPECT_EQ(basement_.count(), 0u);
}

TEST_F(BasementTest, UpdatesWithoutAFunctionAreIgnored) {
  Insert("a", "1");
  ctx_.update = nullptr;
  Update("a", "+");
  Send(MessageType::kUpdateBroadcast, "", "+", {});
  UpdateFunction empty;
  ctx_.update = &empty;
  Update("a", "+");
  EXPECT_EQ(Committed("a"), "1");
  EXPECT_EQ(basement_.max_msn(), msn_);
}

TEST_F(BasementTest, LiveSnapshotsKeepOlderVersionsUntilOptimize) {
  ctx_.oldest_live_snapshot = 50;
  Insert("k", "v40", XidStack{40});
  Commit("k", XidStack{40});
  Insert("k", "v60", XidStack{60});
  Commit("k", XidStack{60});
  LeafEntryView entry = basement_.entry(0);
  ASSERT_EQ(entry.committed_count(), 2u);
  StoredValue seen;
  ASSERT_TRUE(entry.ReadVisible(
      {}, [](TxnId w) { return w < 50; }, &seen));
  EXPECT_EQ(seen.bytes, "v40");
  // The snapshot ends.
  ctx_.oldest_live_snapshot = kNoTxn;
  Send(MessageType::kOptimize, "", "", {});
  ASSERT_EQ(basement_.entry(0).committed_count(), 1u);
  EXPECT_EQ(Committed("k"), "v60");
  // A committed delete is removed once no snapshot needs what it hides.
  ctx_.oldest_live_snapshot = 70;
  Delete("k", XidStack{80});
  Commit("k", XidStack{80});
  EXPECT_EQ(basement_.count(), 1u);
  ctx_.oldest_live_snapshot = kNoTxn;
  Send(MessageType::kOptimize, "", "", {});
  EXPECT_EQ(basement_.count(), 0u);
}

TEST_F(BasementTest, RandomTransactionsMatchModel) { RunRandomTransactions(31); }

TEST_F(BasementTest, RandomTransactionsWithValuesOutOfLineMatchModel) {
  StoreValuesOutOfLine();
  RunRandomTransactions(32);
  EXPECT_GT(values_.writes, 1000);
  EXPECT_GT(values_.frees, 1000);
}

void BasementTest::RunRandomTransactions(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, std::string> committed;
  struct Txn {
    TxnId id;
    std::map<std::string, std::optional<std::string>> writes;
  };
  std::vector<Txn> live;
  std::map<std::string, TxnId> locks;
  TxnId next_id = 100;
  auto key_of = [&] { return "k" + std::to_string(rng() % 150); };
  auto seen_by = [&](const Txn* txn, const std::string& key) -> std::optional<std::string> {
    if (txn != nullptr) {
      auto w = txn->writes.find(key);
      if (w != txn->writes.end()) return w->second;
    }
    auto c = committed.find(key);
    return c == committed.end() ? std::nullopt : std::optional<std::string>(c->second);
  };
  auto finish = [&](size_t index, bool commit) {
    Txn txn = std::move(live[index]);
    live.erase(live.begin() + static_cast<ptrdiff_t>(index));
    for (auto& [key, value] : txn.writes) {
      if (commit) {
        Commit(key, XidStack{txn.id});
        if (value.has_value()) {
          committed[key] = *value;
        } else {
          committed.erase(key);
        }
      } else {
        Abort(key, XidStack{txn.id});
      }
      locks.erase(key);
    }
  };
  for (int step = 0; step < 20000; ++step) {
    if (ctx_.owns_values && step % 97 == 0) {
      // Keep older committed versions for a while, as a live snapshot would.
      ctx_.oldest_live_snapshot = live.empty() || rng() % 2 == 0 ? kNoTxn : live.front().id;
    }
    int op = static_cast<int>(rng() % 100);
    if (op < 5 && live.size() < 5) {
      live.push_back(Txn{next_id++, {}});
    } else if (op < 10 && !live.empty()) {
      finish(rng() % live.size(), rng() % 3 != 0);
    } else if (op < 12 && live.empty()) {
      Send(MessageType::kUpdateBroadcast, "", "b", {});
      for (auto& [key, value] : committed) value += "b";
    } else {
      std::string key = key_of();
      Txn* txn = live.empty() || rng() % 4 == 0 ? nullptr : &live[rng() % live.size()];
      auto lock = locks.find(key);
      if (lock != locks.end() && (txn == nullptr || lock->second != txn->id)) continue;
      XidStack xids;
      if (txn != nullptr) xids.Push(txn->id);
      std::optional<std::string> result;
      int kind = static_cast<int>(rng() % 3);
      if (kind == 0) {
        result = std::string(rng() % 10, 'v');
        Insert(key, *result, xids);
      } else if (kind == 1) {
        Delete(key, xids);
      } else {
        std::string extra = rng() % 6 == 0 ? "delete" : "u";
        Update(key, extra, xids);
        std::optional<std::string> old = seen_by(txn, key);
        std::string_view old_view = old.has_value() ? std::string_view(*old) : std::string_view();
        result = AppendUpdate(key, old.has_value() ? &old_view : nullptr, extra);
      }
      if (txn == nullptr) {
        if (result.has_value()) {
          committed[key] = *result;
        } else {
          committed.erase(key);
        }
      } else {
        txn->writes[key] = result;
        locks[key] = txn->id;
      }
    }
    if (step % 503 == 0) {
      for (int k = 0; k < 150; ++k) {
        std::string key = "k" + std::to_string(k);
        std::optional<std::string> expected = seen_by(nullptr, key);
        ASSERT_EQ(ReadBy(key, {}), expected.value_or("<none>")) << key << " step " << step;
        for (const Txn& txn : live) {
          expected = seen_by(&txn, key);
          ASSERT_EQ(ReadBy(key, XidStack{txn.id}), expected.value_or("<none>"))
              << key << " by " << txn.id << " step " << step;
        }
      }
      ExpectSorted(basement_);
      ExpectNoLeakedOrDanglingBlocks();
      Basement copy;
      ASSERT_TRUE(Basement::Deserialize(Serialized(), *ctx_.cmp, &copy).ok());
      std::string again;
      copy.Serialize(&again);
      ASSERT_EQ(again, Serialized());
    }
  }
  while (!live.empty()) finish(0, true);
  if (ctx_.owns_values) {
    // No snapshot is left: lone deletes kept for one go too.
    ctx_.oldest_live_snapshot = kNoTxn;
    Send(MessageType::kOptimize, "", "", {});
  }
  EXPECT_EQ(Contents(), committed);
  ExpectNoLeakedOrDanglingBlocks();
}

TEST_F(BasementTest, OutOfLineValuesLiveAsLongAsTheirVersions) {
  StoreValuesOutOfLine();
  const std::string v40(8, '4'), v60(8, '6'), v80(8, '8');
  ctx_.oldest_live_snapshot = 50;
  Insert("k", v40, XidStack{40});
  Commit("k", XidStack{40});
  Insert("k", v60, XidStack{60});
  Commit("k", XidStack{60});
  Insert("small", "tiny");  // under the threshold: inline
  EXPECT_EQ(values_.writes, 2);
  EXPECT_EQ(values_.blocks.size(), 2u);
  ExpectNoLeakedOrDanglingBlocks();
  StoredValue seen;
  ASSERT_TRUE(basement_.entry(0).ReadVisible(
      {}, [](TxnId w) { return w < 50; }, &seen));
  EXPECT_TRUE(seen.out_of_line);
  EXPECT_EQ(ValueOf(seen, &values_), v40);
  EXPECT_EQ(Committed("k"), v60);
  EXPECT_EQ(Committed("small"), "tiny");
  // The snapshot ends: the version only it saw goes, and its block with it.
  ctx_.oldest_live_snapshot = kNoTxn;
  Send(MessageType::kOptimize, "", "", {});
  EXPECT_EQ(values_.blocks.size(), 1u);
  ExpectNoLeakedOrDanglingBlocks();
  // An autocommitted overwrite replaces the entry, a delete removes it.
  Insert("k", v80);
  EXPECT_EQ(Committed("k"), v80);
  ExpectNoLeakedOrDanglingBlocks();
  Delete("k");
  EXPECT_EQ(Committed("k"), "<none>");
  EXPECT_TRUE(values_.blocks.empty());
  EXPECT_EQ(values_.frees, values_.writes);
}

TEST_F(BasementTest, OutOfLineProvisionalValuesGoWithTheirAbort) {
  StoreValuesOutOfLine();
  const std::string base(8, 'b'), mine(9, 'm');
  Insert("k", base);
  Insert("k", mine, XidStack{10});
  EXPECT_EQ(values_.blocks.size(), 2u);
  EXPECT_EQ(ReadBy("k", XidStack{10}), mine);
  Abort("k", XidStack{10});
  EXPECT_EQ(values_.blocks.size(), 1u);
  Insert("k", mine, XidStack{11});
  Commit("k", XidStack{11});
  EXPECT_EQ(Committed("k"), mine);
  EXPECT_EQ(values_.blocks.size(), 1u);  // nothing older kept without snapshots
  ExpectNoLeakedOrDanglingBlocks();
}

TEST_F(BasementTest, APlaceholderSharesItsOriginalsValueBlock) {
  StoreValuesOutOfLine();
  const std::string big(8, 'x');
  // Written inline (the store failing), so the next store moves it out.
  values_.fail_writes = true;
  Insert("k", big);
  values_.fail_writes = false;
  EXPECT_TRUE(values_.blocks.empty());
  EXPECT_EQ(Committed("k"), big);
  // A nested write fills the outer level with a placeholder copy of the committed value:
  // both versions move out of line into one block.
  Insert("k", "c", XidStack{20, 21});
  EXPECT_EQ(values_.writes, 1);
  ASSERT_EQ(ReferencedBlocks().size(), 1u);
  LeafEntryView entry = basement_.entry(0);
  ASSERT_EQ(entry.provisional_count(), 2u);
  EXPECT_TRUE(entry.provisional(0).placeholder);
  EXPECT_TRUE(entry.provisional(0).out_of_line);
  EXPECT_EQ(entry.provisional(0).value, entry.committed(0).value);
  // The child aborts: the placeholder goes, the committed version keeps the block.
  Abort("k", XidStack{20, 21});
  EXPECT_EQ(values_.frees, 0);
  EXPECT_EQ(ReadBy("k", XidStack{20}), big);
  Abort("k", XidStack{20});
  Insert("k", "short");
  EXPECT_EQ(values_.frees, 1);
  ExpectNoLeakedOrDanglingBlocks();
}

TEST_F(BasementTest, UpdatesReadOutOfLineValuesAndStopWhenTheyCannot) {
  StoreValuesOutOfLine();
  const std::string big(8, 'v');
  Insert("k", big);
  Update("k", "u");
  EXPECT_EQ(Committed("k"), big + "u");
  ASSERT_TRUE(ctx_.error.ok());
  values_.fail_reads = true;
  Update("k", "w");
  EXPECT_TRUE(ctx_.error.IsIOError()) << ctx_.error.ToString();
  values_.fail_reads = false;
  EXPECT_EQ(Committed("k"), big + "u");  // left as it was
  ExpectNoLeakedOrDanglingBlocks();
  // A damaged block is no failure: the update is dropped, counted, and the row keeps its
  // reference (its reads report the damage), in a transaction or not, one row or all.
  ctx_.error = Status::OK();
  Insert("small", "s");
  values_.corrupt_reads = true;
  Update("k", "w");
  Update("k", "x", XidStack{7});
  EXPECT_TRUE(ctx_.error.ok()) << ctx_.error.ToString();
  EXPECT_EQ(ctx_.updates_of_damaged_rows, 2u);
  Send(MessageType::kUpdateBroadcast, "", "y", {});
  EXPECT_TRUE(ctx_.error.ok()) << ctx_.error.ToString();
  EXPECT_EQ(ctx_.updates_of_damaged_rows, 3u);
  values_.corrupt_reads = false;
  EXPECT_EQ(Committed("k"), big + "u");
  EXPECT_EQ(ReadBy("k", XidStack{7}), big + "u");
  EXPECT_EQ(Committed("small"), "sy");  // the broadcast reached the readable row
  ExpectNoLeakedOrDanglingBlocks();
  // A read that says Corruption of a block that verifies as stored (say, the codec found no
  // memory) is no damage: it stops the caller, as an I/O error does.
  values_.corrupt_reads = true;
  values_.damaged = false;
  Update("k", "w");
  EXPECT_TRUE(ctx_.error.IsCorruption()) << ctx_.error.ToString();
  EXPECT_EQ(ctx_.updates_of_damaged_rows, 3u);
  values_.corrupt_reads = false;
  values_.damaged = true;
  EXPECT_EQ(Committed("k"), big + "u");
  // Without a store an update meeting an out-of-line value fails too.
  ctx_.error = Status::OK();
  ctx_.values = nullptr;
  ctx_.owns_values = false;
  Update("k", "w");
  EXPECT_TRUE(ctx_.error.IsCorruption()) << ctx_.error.ToString();
}

TEST_F(BasementTest, ACopyNeitherWritesNorFreesValueBlocks) {
  StoreValuesOutOfLine();
  Insert("k", std::string(8, 'a'));
  ASSERT_EQ(values_.writes, 1);
  // A read's copy of the row, applied to with a context that reads values only.
  Basement copy;
  copy.AppendEncoded(basement_.encoded_entry(0));
  copy.set_max_msn(basement_.max_msn());
  ApplyContext reading = ctx_;
  reading.owns_values = false;
  copy.Apply(Message{MessageType::kInsert, ++msn_, {}, "k", std::string(9, 'b')}, reading);
  copy.Apply(Message{MessageType::kUpdate, ++msn_, {}, "k", "u"}, reading);
  EXPECT_EQ(values_.writes, 1);
  EXPECT_EQ(values_.frees, 0);
  EXPECT_EQ(ContentsOf(copy, &values_)["k"], std::string(9, 'b') + "u");
  EXPECT_FALSE(copy.entry(0).newest_committed().out_of_line);
}

TEST(OutOfLineValueTest, ReferencesAndBlocksRoundTripAndRejectDamage) {
  std::string ref;
  ValueRef{12345, 70000}.EncodeTo(&ref);
  ValueRef decoded;
  ASSERT_TRUE(ValueRef::Decode(ref, &decoded));
  EXPECT_EQ(decoded.block, 12345);
  EXPECT_EQ(decoded.length, 70000u);
  EXPECT_FALSE(ValueRef::Decode(ref + "x", &decoded));
  EXPECT_FALSE(ValueRef::Decode(ref.substr(0, 2), &decoded));
  std::string zero;
  ValueRef{1, 0}.EncodeTo(&zero);
  EXPECT_FALSE(ValueRef::Decode(zero, &decoded));
  EXPECT_EQ(decoded.length, 70000u);  // a failed decode leaves it alone
  std::string block_zero;
  ValueRef{0, 5}.EncodeTo(&block_zero);
  ValueRef other;
  EXPECT_FALSE(ValueRef::Decode(block_zero, &other));
  // The same numbers in a longer varint than needed: another string for one block.
  EXPECT_FALSE(ValueRef::Decode(std::string("\x81\x00\x05", 3), &other));
  EXPECT_TRUE(ValueRef::Decode(std::string("\x01\x05", 2), &other));

  std::string value(70000, 'z');
  value[5] = 'q';
  std::string block;
  ASSERT_TRUE(EncodeValueBlock(Compression::kZstd, 0, value, &block).ok());
  EXPECT_LT(block.size(), value.size() / 10);
  std::string out;
  ASSERT_TRUE(DecodeValueBlock(block, decoded, "f", &out).ok());
  EXPECT_EQ(out, value);
  ValueRef wrong_length{12345, 69999};
  EXPECT_TRUE(DecodeValueBlock(block, wrong_length, "f", &out).IsCorruption());
  std::string flipped = block;
  flipped[flipped.size() / 2] ^= 1;
  Status s = DecodeValueBlock(flipped, decoded, "f", &out);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.ToString().find("checksum"), std::string::npos) << s.ToString();
  EXPECT_TRUE(DecodeValueBlock("FVA", decoded, "f", &out).IsCorruption());
  // Verifying as stored, without decoding: the same damage, and a length the frame
  // declares against the one the reference says.
  EXPECT_TRUE(VerifyValueBlock(block, decoded, "f").ok());
  EXPECT_TRUE(VerifyValueBlock(flipped, decoded, "f").IsCorruption());
  EXPECT_TRUE(VerifyValueBlock(block, wrong_length, "f").IsCorruption());
  EXPECT_TRUE(VerifyValueBlock("FVA", decoded, "f").IsCorruption());
  std::string other_magic = block;
  other_magic[0] = 'X';
  EXPECT_TRUE(VerifyValueBlock(other_magic, decoded, "f").IsCorruption());
}

// Inserts keys k<first>..k<first + n - 1> (three digits, zero padded) with MSNs from `msn`.
void Fill(Basement* basement, int first, int n, Msn msn, const ApplyContext& ctx) {
  for (int i = first; i < first + n; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "k%03d", i);
    basement->Apply(Message{MessageType::kInsert, msn++, {}, key, std::string(10, 'v')}, ctx);
  }
}

TEST_F(BasementTest, MoveSuffixToAndAppendAllKeepOrder) {
  Fill(&basement_, 0, 100, 1, ctx_);
  std::map<std::string, std::string> all = Contents();
  Basement right;
  right.set_max_msn(7);
  basement_.MoveSuffixTo(60, &right);
  EXPECT_EQ(basement_.count(), 60u);
  EXPECT_EQ(right.count(), 40u);
  EXPECT_EQ(basement_.key(59), "k059");
  EXPECT_EQ(right.key(0), "k060");
  EXPECT_EQ(right.max_msn(), basement_.max_msn());
  ExpectSorted(right);
  EXPECT_EQ(basement_.serialized_bytes() + right.serialized_bytes(),
            2 * 8 + 1 + 1 + basement_.live_bytes() + right.live_bytes());
  basement_.AppendAll(&right);
  EXPECT_EQ(right.count(), 0u);
  EXPECT_EQ(Contents(), all);
  ExpectSorted(basement_);
  // Appending to an empty basement, and appending an empty one.
  Basement empty;
  empty.AppendAll(&basement_);
  EXPECT_EQ(ContentsOf(empty), all);
  EXPECT_EQ(basement_.count(), 0u);
  Basement nothing;
  empty.AppendAll(&nothing);
  EXPECT_EQ(ContentsOf(empty), all);
  // Entries moved out still apply messages where they land.
  empty.Apply(Message{MessageType::kDelete, empty.max_msn() + 1, {}, "k050", ""}, ctx_);
  all.erase("k050");
  EXPECT_EQ(ContentsOf(empty), all);
}

TEST_F(BasementTest, AppendEncodedBuildsInKeyOrder) {
  Basement built;
  for (int i = 0; i < 50; ++i) {
    std::string encoded;
    EncodeAutocommittedLeafEntry("key" + std::to_string(100 + i), "v" + std::to_string(i),
                                 &encoded);
    built.AppendEncoded(encoded);
  }
  EXPECT_EQ(built.count(), 50u);
  ExpectSorted(built);
  size_t i;
  ASSERT_TRUE(built.Find("key120", *ctx_.cmp, &i));
  EXPECT_EQ(i, 20u);
  EXPECT_FALSE(built.Find("key1200", *ctx_.cmp, &i));
  EXPECT_EQ(i, 21u);
  EXPECT_EQ(built.LowerBound("a", *ctx_.cmp), 0u);
  EXPECT_EQ(built.LowerBound("z", *ctx_.cmp), 50u);
}

TEST_F(BasementTest, SerializeRoundTrip) {
  Fill(&basement_, 0, 300, 1, ctx_);
  msn_ = basement_.max_msn();
  for (int i = 0; i < 300; i += 7) Insert("k" + std::to_string(i), "p", XidStack{9, 10});
  for (int i = 0; i < 300; i += 5) Delete("k" + std::to_string(i));
  std::string serialized = Serialized();
  EXPECT_EQ(serialized.size(), basement_.serialized_bytes());
  Basement restored;
  Fill(&restored, 500, 3, 1, ctx_);
  ASSERT_TRUE(Basement::Deserialize(serialized, *ctx_.cmp, &restored).ok());
  EXPECT_EQ(restored.max_msn(), basement_.max_msn());
  EXPECT_EQ(restored.count(), basement_.count());
  EXPECT_EQ(restored.garbage_bytes(), 0u);
  std::string again;
  restored.Serialize(&again);
  EXPECT_EQ(again, serialized);
  for (size_t i = 0; i < restored.count(); ++i) {
    EXPECT_EQ(restored.encoded_entry(i), basement_.encoded_entry(i));
  }
}

TEST_F(BasementTest, CopyFromHoldsTheSameEntriesAndSharesNothing) {
  Fill(&basement_, 0, 300, 1, ctx_);
  msn_ = basement_.max_msn();
  for (int i = 0; i < 300; i += 7) Insert("k" + std::to_string(i), "p", XidStack{9, 10});
  for (int i = 0; i < 300; i += 5) Delete("k" + std::to_string(i));
  ASSERT_GT(basement_.garbage_bytes(), 0u);
  Basement copy;
  Fill(&copy, 500, 3, 1, ctx_);
  copy.CopyFrom(basement_);
  EXPECT_EQ(copy.max_msn(), basement_.max_msn());
  EXPECT_EQ(copy.count(), basement_.count());
  EXPECT_EQ(copy.serialized_bytes(), basement_.serialized_bytes());
  std::string copied;
  copy.Serialize(&copied);
  EXPECT_EQ(copied, Serialized());
  size_t i;
  EXPECT_TRUE(copy.Find("k001", *ctx_.cmp, &i));
  EXPECT_FALSE(copy.Find("k5", *ctx_.cmp, &i));

  // Changing the original leaves the copy as it was, and the copy still takes messages.
  Delete("k001");
  Insert("k5", "back");
  std::string after;
  copy.Serialize(&after);
  EXPECT_EQ(after, copied);
  EXPECT_TRUE(copy.Find("k001", *ctx_.cmp, &i));
  EXPECT_FALSE(copy.Find("k5", *ctx_.cmp, &i));
  copy.Apply(Message{MessageType::kInsert, copy.max_msn() + 1, {}, "k9999", "new"}, ctx_);
  EXPECT_TRUE(copy.Find("k9999", *ctx_.cmp, &i));
  EXPECT_FALSE(basement_.Find("k9999", *ctx_.cmp, &i));
  ExpectSorted(copy);
}

// A recycled basement takes the next serialized basement into its own arena buffer and
// index vectors, and reads exactly like a fresh Deserialize; a corrupt one leaves it empty.
TEST_F(BasementTest, AdoptIntoARecycledBasementReusesItsMemory) {
  Fill(&basement_, 0, 300, 1, ctx_);
  const std::string first = Serialized();
  Basement recycled;
  ASSERT_TRUE(Basement::Deserialize(std::string(first), *ctx_.cmp, &recycled).ok());
  recycled.Clear();
  const size_t memory = recycled.memory_bytes();

  basement_.Clear();
  Fill(&basement_, 1000, 250, 1, ctx_);  // fewer bytes: everything fits what it had
  const std::string second = Serialized();
  ChunkString buffer = recycled.TakeArena();
  const char* storage = buffer.data();
  EXPECT_EQ(recycled.count(), 0u);
  EXPECT_GE(buffer.capacity(), second.size());
  buffer.assign(second);
  ASSERT_TRUE(recycled.Adopt(std::move(buffer), *ctx_.cmp).ok());
  Basement expected;
  ASSERT_TRUE(Basement::Deserialize(std::string_view(second), *ctx_.cmp, &expected).ok());
  ASSERT_EQ(recycled.count(), expected.count());
  EXPECT_EQ(recycled.max_msn(), expected.max_msn());
  for (size_t i = 0; i < recycled.count(); ++i) {
    EXPECT_EQ(recycled.encoded_entry(i), expected.encoded_entry(i));
  }
  EXPECT_GE(reinterpret_cast<uintptr_t>(recycled.encoded_entry(0).data()),
            reinterpret_cast<uintptr_t>(storage));  // the same buffer
  EXPECT_LT(reinterpret_cast<uintptr_t>(recycled.encoded_entry(0).data()),
            reinterpret_cast<uintptr_t>(storage) + second.size());
  EXPECT_LE(recycled.memory_bytes(), memory);
  size_t i;
  EXPECT_TRUE(recycled.Find("k1100", *ctx_.cmp, &i));
  EXPECT_FALSE(recycled.Find("k100", *ctx_.cmp, &i));

  ChunkString corrupt = recycled.TakeArena();
  corrupt.assign(second);
  corrupt[corrupt.size() / 2] ^= 0x5a;
  corrupt.resize(corrupt.size() - 3);
  EXPECT_TRUE(recycled.Adopt(std::move(corrupt), *ctx_.cmp).IsCorruption());
  EXPECT_EQ(recycled.count(), 0u);
  EXPECT_FALSE(recycled.Find("k1100", *ctx_.cmp, &i));
}

// AdoptPrefix keeps exactly the entries up to the rows_above-th one above the key (all of
// them when fewer follow), the same bytes as a full Adopt; searches inside it agree.
TEST_F(BasementTest, AdoptPrefixKeepsTheRowsUpToTheAskedOnesAboveTheKey) {
  Fill(&basement_, 100, 200, 1, ctx_);  // k100 .. k299
  const std::string serialized = Serialized();
  Basement full;
  ASSERT_TRUE(Basement::Deserialize(std::string_view(serialized), *ctx_.cmp, &full).ok());
  struct Case {
    std::string key;
    size_t rows_above;
    size_t expected_count;
  };
  const Case cases[] = {
      {"k150", 1, 52},                     // k100..k150, then k151
      {"k150", 17, 68},                    // ... through k167
      {"k1505", 1, 52},                    // absent key between k150 and k151
      {"a", 1, 1},                         // below every key: the first row only
      {"a", 3, 3},      {"k290", 5, 196},  // k100..k290 and k291..k295
      {"k297", 5, 200},                    // fewer than asked above it: everything
      {"z", 1, 200},                       // above every key
  };
  for (const Case& c : cases) {
    Basement prefix;
    ChunkString buffer(serialized.begin(), serialized.end());
    ASSERT_TRUE(prefix.AdoptPrefix(std::move(buffer), *ctx_.cmp, {c.key, c.rows_above}).ok());
    ASSERT_EQ(prefix.count(), c.expected_count) << c.key << " " << c.rows_above;
    EXPECT_EQ(prefix.max_msn(), full.max_msn());
    for (size_t i = 0; i < prefix.count(); ++i) {
      EXPECT_EQ(prefix.encoded_entry(i), full.encoded_entry(i));
    }
    EXPECT_EQ(prefix.LowerBound(c.key, *ctx_.cmp),
              std::min(full.LowerBound(c.key, *ctx_.cmp), prefix.count()));
    size_t in_prefix;
    size_t in_full;
    EXPECT_EQ(prefix.Find(c.key, *ctx_.cmp, &in_prefix), full.Find(c.key, *ctx_.cmp, &in_full));
    if (in_full < full.count()) {
      EXPECT_EQ(in_prefix, in_full);
    }
  }
  // Damage inside the prefix is still found; past it, it is the frame checksum's to find.
  ChunkString damaged(serialized.begin(), serialized.end());
  damaged.resize(serialized.size() / 4);
  Basement prefix;
  EXPECT_TRUE(prefix.AdoptPrefix(std::move(damaged), *ctx_.cmp, {"k299", 1}).IsCorruption());
  EXPECT_EQ(prefix.count(), 0u);
}

// ClearKeepingArena empties the basement as Clear does, but its arena bytes stay as garbage
// (for TakeArena to hand over at their old size); the basement then takes rows as usual.
TEST_F(BasementTest, ClearKeepingArenaLeavesNoRowsButTheBytes) {
  Fill(&basement_, 0, 100, 1, ctx_);
  const size_t arena_bytes = basement_.live_bytes() + basement_.garbage_bytes();
  basement_.ClearKeepingArena();
  EXPECT_EQ(basement_.count(), 0u);
  EXPECT_EQ(basement_.live_bytes(), 0u);
  EXPECT_EQ(basement_.garbage_bytes(), arena_bytes);
  EXPECT_EQ(basement_.max_msn(), 0u);
  size_t i;
  EXPECT_FALSE(basement_.Find("k10", *ctx_.cmp, &i));
  Fill(&basement_, 500, 3, 1, ctx_);
  EXPECT_EQ(basement_.count(), 3u);
  EXPECT_TRUE(basement_.Find("k501", *ctx_.cmp, &i));
  const size_t live = basement_.live_bytes();
  EXPECT_GE(basement_.TakeArena().size(), live);
  EXPECT_EQ(basement_.count(), 0u);
}

// A large value passes through the basement's encoding scratch; the scratch does not keep
// its size afterwards (it would count in the cache as a second copy of the value).
TEST_F(BasementTest, LargeValueLeavesNoLargeScratchBehind) {
  const std::string big(64 << 10, 'b');
  basement_.Apply(Message{MessageType::kInsert, ++msn_, {}, "k1", big}, ctx_);
  EXPECT_LT(basement_.memory_bytes(), big.size() * 3 / 2);
  basement_.Apply(Message{MessageType::kInsert, ++msn_, XidStack{9}, "k2", big}, ctx_);
  EXPECT_LT(basement_.memory_bytes(), big.size() * 5 / 2);
}

TEST_F(BasementTest, DeserializeAdoptingTheBufferMatchesCopying) {
  Fill(&basement_, 0, 300, 1, ctx_);
  msn_ = basement_.max_msn();
  for (int i = 0; i < 300; i += 7) Insert("k" + std::to_string(i), "p", XidStack{9, 10});
  std::string serialized = Serialized();
  Basement copied;
  ASSERT_TRUE(Basement::Deserialize(std::string_view(serialized), *ctx_.cmp, &copied).ok());
  Basement adopted;
  ASSERT_TRUE(Basement::Deserialize(std::string(serialized), *ctx_.cmp, &adopted).ok());
  EXPECT_EQ(adopted.max_msn(), copied.max_msn());
  ASSERT_EQ(adopted.count(), copied.count());
  EXPECT_EQ(adopted.live_bytes(), copied.live_bytes());
  EXPECT_EQ(adopted.serialized_bytes(), serialized.size());
  EXPECT_GT(adopted.garbage_bytes(), 0u);  // the header
  for (size_t i = 0; i < adopted.count(); ++i) {
    EXPECT_EQ(adopted.encoded_entry(i), copied.encoded_entry(i));
  }
  std::string again;
  adopted.Serialize(&again);
  EXPECT_EQ(again, serialized);
  // Rewriting every row makes the arena compact itself; the header goes with the garbage.
  for (Basement* b : {&adopted, &copied}) {
    Msn msn = b->max_msn();
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 300; ++i) {
        b->Apply(Message{MessageType::kInsert, ++msn, {}, "k" + std::to_string(i), "v2"}, ctx_);
      }
    }
  }
  ASSERT_EQ(adopted.count(), copied.count());
  for (size_t i = 0; i < adopted.count(); ++i) {
    EXPECT_EQ(adopted.encoded_entry(i), copied.encoded_entry(i));
  }
  EXPECT_LT(adopted.garbage_bytes() * 2, adopted.live_bytes() + adopted.garbage_bytes());
}

TEST_F(BasementTest, DeserializeRejectsTruncationAndDamage) {
  Fill(&basement_, 0, 40, 1, ctx_);
  msn_ = basement_.max_msn();
  Insert("k003", "p", XidStack{9});
  std::string serialized = Serialized();
  for (size_t n = 0; n < serialized.size(); ++n) {
    Basement out;
    Status s = Basement::Deserialize(std::string_view(serialized).substr(0, n), *ctx_.cmp, &out);
    ASSERT_TRUE(s.IsCorruption()) << "length " << n << ": " << s.ToString();
  }
  Basement unchanged;
  Fill(&unchanged, 0, 2, 1, ctx_);
  EXPECT_TRUE(Basement::Deserialize(serialized + "x", *ctx_.cmp, &unchanged).IsCorruption());
  EXPECT_EQ(unchanged.count(), 2u) << "a failed Deserialize must leave *out unchanged";

  std::mt19937_64 rng(41);
  int rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = serialized;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    Basement out;
    Status s = Basement::Deserialize(damaged, *ctx_.cmp, &out);
    if (!s.ok()) {
      ASSERT_TRUE(s.IsCorruption()) << s.ToString();
      ++rejected;
      continue;
    }
    ExpectSorted(out);
    for (size_t i = 0; i < out.count(); ++i) (void)out.entry(i).IsEmpty();
    out.Apply(Message{MessageType::kInsert, out.max_msn() + 1, {}, "k010", "x"}, ctx_);
  }
  EXPECT_GT(rejected, 1000);
}

TEST_F(BasementTest, DeserializeRejectsKeysOutOfOrder) {
  for (const char* second : {"a", "b"}) {
    std::string serialized;
    PutFixed64(&serialized, 5);
    PutVarint64(&serialized, 2);
    EncodeAutocommittedLeafEntry("b", "1", &serialized);
    EncodeAutocommittedLeafEntry(second, "2", &serialized);
    Basement out;
    Status s = Basement::Deserialize(serialized, *ctx_.cmp, &out);
    EXPECT_TRUE(s.IsCorruption()) << second;
    EXPECT_NE(s.ToString().find("key"), std::string::npos) << s.ToString();
  }
}

// Under UncheckedKeyOrder() (a comparator the tools do not have) keys in any order read back
// in stored order; damage is still Corruption.
TEST_F(BasementTest, UncheckedKeyOrderReadsKeysInStoredOrder) {
  std::string serialized;
  PutFixed64(&serialized, 5);
  PutVarint64(&serialized, 3);
  EncodeAutocommittedLeafEntry("c", "1", &serialized);
  EncodeAutocommittedLeafEntry("b", "2", &serialized);
  EncodeAutocommittedLeafEntry("a", "3", &serialized);
  Basement out;
  ASSERT_TRUE(Basement::Deserialize(serialized, *UncheckedKeyOrder(), &out).ok());
  ASSERT_EQ(out.count(), 3u);
  EXPECT_EQ(out.key(0), "c");
  EXPECT_EQ(out.key(2), "a");
  EXPECT_EQ(out.max_msn(), 5u);
  EXPECT_TRUE(Basement::Deserialize(serialized, *ctx_.cmp, &out).IsCorruption());
  EXPECT_TRUE(Basement::Deserialize(std::string_view(serialized).substr(0, serialized.size() - 1),
                                    *UncheckedKeyOrder(), &out)
                  .IsCorruption());
}

TEST_F(BasementTest, ArenaCompactionKeepsContents) {
  std::map<std::string, std::string> model;
  size_t peak_memory = 0;
  for (int round = 0; round < 200; ++round) {
    for (int k = 0; k < 20; ++k) {
      std::string key = "key" + std::to_string(k);
      std::string value(100 + round % 7, static_cast<char>('a' + (round + k) % 26));
      if (k % 2 == 0) {
        Insert(key, value);
      } else {
        // The general path: a provisional write and its commit.
        Insert(key, value, XidStack{static_cast<TxnId>(1000 + round)});
        Commit(key, XidStack{static_cast<TxnId>(1000 + round)});
      }
      model[key] = value;
    }
    ASSERT_EQ(Contents(), model) << "round " << round;
    ASSERT_LE(basement_.garbage_bytes(), std::max<size_t>(4096, basement_.live_bytes()));
    if (round > 100) peak_memory = std::max(peak_memory, basement_.memory_bytes());
  }
  // 200 rounds wrote ~50 times the live data; compaction keeps the arena near it.
  EXPECT_LT(peak_memory, 16 * basement_.live_bytes() + 16384);
  EXPECT_EQ(basement_.serialized_bytes(), Serialized().size());
}

TEST_F(BasementTest, MessagesViewingTheBasementItselfAreSafe) {
  Fill(&basement_, 0, 50, 1, ctx_);
  msn_ = basement_.max_msn();
  // Keys and values taken from the basement's own arena, while the arena grows.
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < basement_.count(); ++i) {
      std::string_view key = basement_.key(i);
      StoredValue value;
      ASSERT_TRUE(basement_.entry(i).LatestCommitted(&value));
      basement_.Apply(Message{MessageType::kInsert, ++msn_, {}, key, value.bytes}, ctx_);
    }
  }
  EXPECT_EQ(basement_.count(), 50u);
  for (size_t i = 0; i < basement_.count(); ++i) {
    StoredValue value;
    ASSERT_TRUE(basement_.entry(i).LatestCommitted(&value));
    EXPECT_EQ(value.bytes, std::string(10, 'v'));
  }
}

TEST_F(BasementTest, ClearDropsEverything) {
  Fill(&basement_, 0, 10, 1, ctx_);
  basement_.Clear();
  EXPECT_EQ(basement_.count(), 0u);
  EXPECT_EQ(basement_.max_msn(), 0u);
  EXPECT_EQ(basement_.live_bytes(), 0u);
  Fill(&basement_, 0, 3, 1, ctx_);
  EXPECT_EQ(basement_.count(), 3u);
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// Keys built to stress the head index: shared prefixes of every length, keys that are
// prefixes of others, zero bytes, the empty key, and runs that tie on the four bytes after
// the shared prefix.
std::string IndexStressKey(std::mt19937_64& rng) {
  static const char* const kStems[] = {
      "", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefgh", "user:0000", "user:0001", "zz"};
  std::string key = kStems[rng() % 11];
  int extra = static_cast<int>(rng() % 6);
  for (int i = 0; i < extra; ++i) {
    key.push_back(static_cast<char>(rng() % 4 == 0 ? '\0' : 'a' + rng() % 3));
  }
  return key;
}

size_t LinearLowerBound(const Basement& b, std::string_view key) {
  const Comparator& cmp = *BytewiseComparator();
  size_t i = 0;
  while (i < b.count() && cmp.Compare(b.key(i), key) < 0) ++i;
  return i;
}

void ExpectSearchesMatchLinearScan(const Basement& b, std::mt19937_64& rng, int probes) {
  const Comparator& cmp = *BytewiseComparator();
  for (int p = 0; p < probes; ++p) {
    std::string key = IndexStressKey(rng);
    ASSERT_EQ(b.LowerBound(key, cmp), LinearLowerBound(b, key)) << EscapeBytes(key);
  }
  for (size_t i = 0; i < b.count(); ++i) {
    size_t at;
    ASSERT_TRUE(b.Find(b.key(i), cmp, &at));
    ASSERT_EQ(at, i);
  }
}

TEST(BasementIndexTest, LowerBoundMatchesLinearScanThroughEveryChange) {
  std::mt19937_64 rng(77);
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  UpdateFunction update = AppendUpdate;
  ctx.update = &update;
  Msn msn = 0;
  for (int round = 0; round < 30; ++round) {
    Basement a;
    Basement b;
    for (int op = 0; op < 400; ++op) {
      std::string key = IndexStressKey(rng);
      Basement* target = rng() % 2 ? &a : &b;
      switch (rng() % 6) {
        case 0:
        case 1:
          target->Apply(Message{MessageType::kInsert, ++msn, {}, key, "v"}, ctx);
          break;
        case 2:
          target->Apply(Message{MessageType::kDelete, ++msn, {}, key, {}}, ctx);
          break;
        case 3:
          target->Apply(Message{MessageType::kInsert, ++msn, XidStack{5}, key, "p"}, ctx);
          break;
        case 4:
          target->Apply(Message{MessageType::kUpdate, ++msn, {}, key, "+"}, ctx);
          break;
        case 5:
          if (rng() % 20 == 0) {
            target->Apply(Message{MessageType::kUpdateBroadcast, ++msn, {}, {}, "!"}, ctx);
          }
          break;
      }
      if (op % 50 == 0) {
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(a, rng, 20));
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(b, rng, 20));
      }
    }
    // Splits, merges and reloads rebuild or carry the index.
    Basement whole;
    Basement right;
    std::string bytes;
    switch (round % 4) {
      case 0:
        a.MoveSuffixTo(a.count() / 2, &right);
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(a, rng, 100));
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(right, rng, 100));
        break;
      case 1:
        a.MoveSuffixTo(0, &right);
        whole.AppendAll(&right);  // into an empty basement: takes the arena whole
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(whole, rng, 100));
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(a, rng, 10));
        break;
      case 2:
        // Entries appended one by one after a split of everything above "abc".
        a.MoveSuffixTo(a.LowerBound("abc", *ctx.cmp), &right);
        a.AppendAll(&right);
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(a, rng, 100));
        break;
      case 3:
        a.Serialize(&bytes);
        ASSERT_TRUE(Basement::Deserialize(std::string(bytes), *ctx.cmp, &whole).ok());
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(whole, rng, 100));
        ASSERT_TRUE(Basement::Deserialize(std::string_view(bytes), *ctx.cmp, &right).ok());
        ASSERT_NO_FATAL_FAILURE(ExpectSearchesMatchLinearScan(right, rng, 100));
        break;
    }
  }
}

TEST(BasementIndexTest, KeysOutsideTheSharedPrefixSortToTheEnds) {
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  Basement b;
  Msn msn = 0;
  for (const char* key : {"user:0001", "user:0002", "user:0003"}) {
    b.Apply(Message{MessageType::kInsert, ++msn, {}, key, "v"}, ctx);
  }
  EXPECT_EQ(b.LowerBound("", *ctx.cmp), 0u);
  EXPECT_EQ(b.LowerBound("user", *ctx.cmp), 0u);
  EXPECT_EQ(b.LowerBound("user:", *ctx.cmp), 0u);
  EXPECT_EQ(b.LowerBound("user:0002", *ctx.cmp), 1u);
  EXPECT_EQ(b.LowerBound("user:00021", *ctx.cmp), 2u);
  EXPECT_EQ(b.LowerBound("user;", *ctx.cmp), 3u);
  EXPECT_EQ(b.LowerBound("v", *ctx.cmp), 3u);
  EXPECT_EQ(b.LowerBound("t", *ctx.cmp), 0u);
  // A key outside the range shrinks the shared prefix; searches stay right.
  b.Apply(Message{MessageType::kInsert, ++msn, {}, "u", "v"}, ctx);
  EXPECT_EQ(b.LowerBound("user", *ctx.cmp), 1u);
  EXPECT_EQ(b.LowerBound("u", *ctx.cmp), 0u);
  EXPECT_EQ(b.LowerBound("user:0003", *ctx.cmp), 3u);
}

}  // namespace
}  // namespace fern
