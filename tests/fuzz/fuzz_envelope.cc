// Mesh envelopes, node status, connection digests / lists and replication batches: decode must not
// crash; decode(encode(m)) == m.
#include <cstdint>
#include <string>

#include "codec/conn_sync.h"
#include "codec/envelope.h"
#include "codec/replication_messages.h"
#include "tests/fuzz/fuzz_check.h"

using namespace meshchat::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Envelope e;
  if (Decode(in, e) == DecodeStatus::kOk) {
    Envelope again;
    FUZZ_CHECK(Decode(Encode(e), again) == DecodeStatus::kOk);
    FUZZ_CHECK(again == e);
  }
  NodeStatus s;
  if (Decode(in, s) == DecodeStatus::kOk) {
    NodeStatus again;
    FUZZ_CHECK(Decode(Encode(s), again) == DecodeStatus::kOk);
    FUZZ_CHECK(again == s);
  }
  ConnDigest d;
  if (Decode(in, d) == DecodeStatus::kOk) {
    ConnDigest again;
    FUZZ_CHECK(Decode(Encode(d), again) == DecodeStatus::kOk);
    FUZZ_CHECK(again == d);
  }
  ConnList l;
  if (Decode(in, l) == DecodeStatus::kOk) {
    ConnList again;
    FUZZ_CHECK(Decode(Encode(l), again) == DecodeStatus::kOk);
    FUZZ_CHECK(again == l);
  }
  ReplBatch b;
  if (Decode(in, b) == DecodeStatus::kOk) {
    ReplBatch again;
    FUZZ_CHECK(Decode(Encode(b), again) == DecodeStatus::kOk);
    FUZZ_CHECK(again == b);
  }
  return 0;
}
