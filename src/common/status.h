// Status and Result<T>: Bevan's error values. No exceptions cross a layer;
// every fallible function returns one of these.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bevan {

// The kind of failure. Kept small and stable: `rest/` maps each code to one
// HTTP status and OperationOutcome issue type.
enum class StatusCode : unsigned char {
  kOk = 0,
  kInvalidArgument,     // malformed input from a caller (400)
  kNotFound,            // no such thing (404)
  kAlreadyExists,       // conflicts with existing state (409)
  kFailedPrecondition,  // e.g. version mismatch (412)
  kResourceExhausted,   // a configured limit was exceeded (413/429)
  kUnimplemented,       // not supported (501)
  kInternal,            // a bug or an unexpected failure (500)
  kUnavailable,         // transient; retry may succeed (503)
  kIoError,             // file or socket failure
  kPermissionDenied,    // the caller may not do this (403)
};

// Returns a stable lowercase name for `code`, e.g. "invalid_argument".
std::string_view StatusCodeName(StatusCode code);

// A success value or an error code with a human-readable message.
// Cheap to copy when OK (no allocation).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid_argument: <message>" or "ok".
  std::string ToString() const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status UnimplementedError(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status PermissionDeniedError(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }

// Either a T or a non-OK Status. Accessing the value of an error Result is a
// bug (asserted in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace bevan

#define BEVAN_CONCAT_INNER(a, b) a##b
#define BEVAN_CONCAT(a, b) BEVAN_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::bevan::Status bevan_status_ = (expr);        \
    if (!bevan_status_.ok()) return bevan_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())` binds x to F()'s value or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(BEVAN_CONCAT(bevan_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
