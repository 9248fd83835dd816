// Sinks for generated resources: one NDJSON file per resource type in a
// directory, or all lines in memory (tests).
#pragma once

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "synth/synth.h"

namespace bevan::synth {

// Writes `<dir>/<Type>.ndjson` for every resource type (created or
// truncated by Open, even when no resource of the type comes), each line one
// resource. Buffers up to kBufferSize bytes per type between writes. Not
// thread-safe.
class DirectorySink final : public Sink {
 public:
  static constexpr size_t kBufferSize = 1 << 20;

  DirectorySink() = default;
  DirectorySink(const DirectorySink&) = delete;
  DirectorySink& operator=(const DirectorySink&) = delete;
  ~DirectorySink() override;  // closes files without reporting errors; call Close()

  // Creates `dir` if missing and opens every file. IoError on failure.
  Status Open(const std::string& dir);
  Status Write(ResourceType type, std::string_view json) override;
  // Flushes and closes every file; IoError on a failed write or close.
  Status Close();

 private:
  Status Flush(size_t index);

  std::string dir_;
  std::array<std::FILE*, kResourceTypeCount> files_{};
  std::array<std::string, kResourceTypeCount> buffers_;
};

// Keeps every line in memory, by type, in order (for tests and small runs).
class MemorySink final : public Sink {
 public:
  Status Write(ResourceType type, std::string_view json) override {
    lines_[static_cast<size_t>(type)].emplace_back(json);
    return Status::Ok();
  }
  const std::vector<std::string>& lines(ResourceType type) const { return lines_[static_cast<size_t>(type)]; }

 private:
  std::array<std::vector<std::string>, kResourceTypeCount> lines_;
};

}  // namespace bevan::synth
