#include "ft/message.h"

#include <cassert>

namespace fern {

bool IsBroadcast(MessageType type) {
  return type == MessageType::kUpdateBroadcast || type == MessageType::kOptimize;
}

bool IsValidMessageType(uint8_t raw) {
  return raw >= static_cast<uint8_t>(MessageType::kInsert) &&
         raw <= static_cast<uint8_t>(MessageType::kOptimize);
}

XidStack::XidStack(std::initializer_list<TxnId> ids) {
  for (TxnId id : ids) Push(id);
}

void XidStack::Push(TxnId id) {
  assert(size_ < kMaxXidDepth);
  if (size_ < kMaxXidDepth) ids_[size_++] = id;
}

bool operator==(const XidStack& a, const XidStack& b) {
  if (a.size_ != b.size_) return false;
  for (size_t i = 0; i < a.size_; ++i) {
    if (a.ids_[i] != b.ids_[i]) return false;
  }
  return true;
}

namespace {

template <typename String>
void EncodeMessageTo(const Message& m, String* out) {
  PutFixed8(out, static_cast<uint8_t>(m.type));
  PutFixed64(out, m.msn);
  if (m.committed_by != kNoTxn && m.xids.empty()) {
    PutFixed8(out, kCommittedByFlag | 1);
    PutFixed64(out, m.committed_by);
  } else {
    PutFixed8(out, static_cast<uint8_t>(m.xids.size()));
    for (size_t i = 0; i < m.xids.size(); ++i) PutFixed64(out, m.xids[i]);
  }
  PutLengthPrefixed(out, m.key);
  PutLengthPrefixed(out, m.value);
}

}  // namespace

void EncodeMessage(const Message& m, std::string* out) { EncodeMessageTo(m, out); }
void EncodeMessage(const Message& m, ChunkString* out) { EncodeMessageTo(m, out); }

bool DecodeMessage(Decoder* in, Message* m) {
  uint8_t type;
  uint8_t depth;
  if (!in->GetFixed8(&type) || !IsValidMessageType(type)) return false;
  if (!in->GetFixed64(&m->msn)) return false;
  if (!in->GetFixed8(&depth)) return false;
  m->type = static_cast<MessageType>(type);
  m->xids.Clear();
  m->committed_by = kNoTxn;
  if (depth == (kCommittedByFlag | 1)) {
    // Only autocommitted writes are stamped; resolutions and optimize carry no writer.
    if (m->type != MessageType::kInsert && m->type != MessageType::kDelete &&
        m->type != MessageType::kUpdate && m->type != MessageType::kUpdateBroadcast) {
      return false;
    }
    if (!in->GetFixed64(&m->committed_by) || m->committed_by == kNoTxn) return false;
    return in->GetLengthPrefixed(&m->key) && in->GetLengthPrefixed(&m->value);
  }
  if (depth > kMaxXidDepth) return false;
  for (uint8_t i = 0; i < depth; ++i) {
    TxnId id;
    if (!in->GetFixed64(&id) || id == kNoTxn) return false;
    m->xids.Push(id);
  }
  return in->GetLengthPrefixed(&m->key) && in->GetLengthPrefixed(&m->value);
}

size_t EncodedMessageSize(const Message& m) {
  const size_t ids = m.committed_by != kNoTxn && m.xids.empty() ? 1 : m.xids.size();
  return 1 + 8 + 1 + 8 * ids + VarintLength(m.key.size()) + m.key.size() +
         VarintLength(m.value.size()) + m.value.size();
}

}  // namespace fern
