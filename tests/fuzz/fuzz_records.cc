// Records peers send over reliable channels (nodes/shard/records.h) and the revocation list: any
// bytes decode or are refused without crashing; what decodes re-encodes to the same record.
#include <cstdint>
#include <string>

#include "nodes/gateway/revocations.h"
#include "nodes/shard/records.h"
#include "tests/fuzz/fuzz_check.h"

using namespace meshchat::nodes;

namespace {
template <typename R>
void RoundTrip(std::string_view in) {
  R r;
  if (!DecodeRecord(in, r)) return;
  R again;
  FUZZ_CHECK(DecodeRecord(EncodeRecord(r), again));
  FUZZ_CHECK(again == r);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)KindOf(in);
  RoundTrip<InboxEntry>(in);
  RoundTrip<UserState>(in);
  RoundTrip<ChatState>(in);
  RoundTrip<InboxAppend>(in);
  RoundTrip<GroupCursor>(in);
  RoundTrip<MediaRefRecord>(in);
  RoundTrip<HandoverMarker>(in);
  RoundTrip<HandoverRows>(in);
  RoundTrip<HandoverDone>(in);
  RoundTrip<HandoverState>(in);
  RoundTrip<PresenceSetting>(in);
  RoundTrip<MediaBytes>(in);
  std::vector<uint64_t> v;
  (void)DecodeUints(in, v, 3);
  Revocations list;
  if (list.Parse(std::string(in)).ok()) {
    Revocations again;
    FUZZ_CHECK(again.Parse(list.Serialize()).ok());
    FUZZ_CHECK(again.Serialize() == list.Serialize());
  }
  return 0;
}
