#pragma once

#include <catch2/catch.hpp>

#include <chrono>

namespace meshchat::test {

template <typename T>
T Expect(client::ChatClient& c, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    INFO("waiting for an event");
    REQUIRE(left.count() > 0);
    auto ev = c.Next(static_cast<int>(left.count()));
    INFO(ev.status().ToString());
    REQUIRE(ev.ok());
    if (auto* t = std::get_if<T>(&*ev)) return *t;
    if (auto* e = std::get_if<codec::Error>(&*ev))
      UNSCOPED_INFO("skipped error: " << client::Describe(*e));
  }
}

}  // namespace meshchat::test
