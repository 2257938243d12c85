// Cluster-map parser: never crashes; a map that parses serializes to one that parses equal.
#include <cstdint>
#include <string>

#include "router/cluster_map.h"
#include "tests/fuzz/fuzz_check.h"

using namespace meshchat::router;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  auto m = ClusterMap::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!m.ok()) return 0;
  auto again = ClusterMap::Parse(m->Serialize());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->epoch == m->epoch && again->nodes == m->nodes &&
             again->operators == m->operators);
  return 0;
}
