// Status and Result<T>: typed errors for the data path (C++20 has no std::expected).
// Expected failures (a bad frame, a missing key, a full map) are values, never exceptions.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace meshchat {

enum class Code {
  kOk = 0,
  kNotFound,
  kInvalid,      // caller or peer supplied something malformed
  kTooLarge,     // a size limit was exceeded
  kIo,           // the OS or a library reported an I/O failure
  kFull,         // a store or queue has no room (e.g. MDB_MAP_FULL)
  kUnavailable,  // a peer is down or unreachable; retry later
  kTimeout,
  kExists,
};

const char* CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const { return ok() ? "ok" : std::string(CodeName(code_)) + ": " + msg_; }

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

inline const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kInvalid: return "invalid";
    case Code::kTooLarge: return "too large";
    case Code::kIo: return "io error";
    case Code::kFull: return "full";
    case Code::kUnavailable: return "unavailable";
    case Code::kTimeout: return "timeout";
    case Code::kExists: return "exists";
  }
  return "unknown";
}

}  // namespace meshchat
