// decode(encode(m)) == m for any codec message, as a Catch2 check.
#pragma once

#include <catch2/catch.hpp>

#include "codec/frame.h"

namespace meshchat::test {

template <typename M>
void RoundTrip(const M& m) {
  M out;
  REQUIRE(Decode(Encode(m), out) == ::meshchat::codec::DecodeStatus::kOk);
  CHECK(out == m);
}

}  // namespace meshchat::test
