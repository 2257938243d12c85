// The --opt KEY=VALUE settings of a node, parsed in one typed place. Every key any role knows
// is declared in node_options.cc with its type and range (docs/OPERATIONS.md lists them); at
// start-up a key no role knows, a number that does not parse or one out of its range is an
// error naming the key. `meshctl up --opt` hands every node the same list, so a node accepts
// the keys of other roles and does not read them.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace meshchat::nodes {

class NodeOptions {
 public:
  NodeOptions() = default;
  // KEY=VALUE strings as given on the command line; throws std::invalid_argument (start-up).
  static NodeOptions Parse(const std::vector<std::string>& key_values);

  bool Has(std::string_view key) const { return values_.count(key) > 0; }
  // The value of a declared key, or `fallback` when it is absent. Asking for an undeclared key,
  // or for one as another type than declared, is a programming error (std::logic_error).
  int64_t Int(std::string_view key, int64_t fallback) const;
  // The same for an unsigned field (sizes, counts; the declared ranges fit it). Only unsigned:
  // an int literal fallback must keep choosing the int64_t form (`Int(k, 2592000) * 1000`).
  template <std::unsigned_integral T>
  T Int(std::string_view key, T fallback) const {
    return static_cast<T>(Int(key, static_cast<int64_t>(fallback)));
  }
  double Real(std::string_view key, double fallback) const;
  std::string Text(std::string_view key, const std::string& fallback = "") const;
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace meshchat::nodes
