// What a shard's primary sends its replicas (nodes/shard/replication.h, docs/ARCHITECTURE.md
// "Replicated shards"): the writes of each committed store batch, in order, and rows of a copy
// of the whole store for a replica that is empty or too far behind.
//
//   kReplBatch   primary -> replica, body = ReplBatch
//   kReplAck     replica -> primary, req = highest batch durable on the replica, arg = the
//                term the replica follows (higher than the sender's: the sender is fenced)
//   kReplHello   replica -> primary, req = the replica's last batch, arg = that batch's term
//                (0, 0: empty); asks for what follows, or for a copy
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/envelope.h"

namespace meshchat::codec {

inline constexpr size_t kMaxReplWrites = 16'384;        // writes in one part
inline constexpr size_t kMaxReplTableBytes = 64;        // table names are short constants
inline constexpr size_t kMaxReplKeyBytes = 4096;        // keys are ids, times and sequences
inline constexpr size_t kMaxReplPartBytes = 512 << 10;  // a part is cut near this size

// One write on the wire. store::WriteOp is the same thing in the store's terms: codec and
// store may not use each other (docs/ARCHITECTURE.md, "Layout"), so nodes/shard converts.
struct ReplWrite {
  enum class Kind : uint8_t { kPut = 1, kDel = 2, kClear = 3 };
  Kind kind = Kind::kPut;
  std::string table;
  std::string key;
  std::string value;  // kPut only
  bool operator==(const ReplWrite&) const = default;
};

struct ReplBatch {
  uint64_t term = 0;  // the primary's fencing term
  uint64_t seq = 0;   // batch number in the shard's history (1, 2, ...); of a copy: the batch
                      //   the copy is taken after
  uint64_t part = 0;  // 0, 1, ... within the batch (a big batch is cut in parts)
  bool last = true;   // the batch's (or the copy's) final part
  bool copy = false;  // rows of a copy of the whole store; part 0 starts from nothing
  std::vector<ReplWrite> writes;
  bool operator==(const ReplBatch&) const = default;
};

std::string Encode(const ReplBatch& b);
// kOk, kTooLarge (over kMaxEnvelopeBody or a limit above) or kMalformed; never throws.
DecodeStatus Decode(std::string_view body, ReplBatch& out);
// Encoded size of one write in a part (for cutting parts).
size_t EncodedSize(const ReplWrite& w);

}  // namespace meshchat::codec
