#include "synth/ndjson_sink.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace bevan::synth {

DirectorySink::~DirectorySink() {
  for (std::FILE*& f : files_) {
    if (f != nullptr) std::fclose(f);
    f = nullptr;
  }
}

Status DirectorySink::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir + ": " + ec.message());
  dir_ = dir;
  for (size_t i = 0; i < kResourceTypeCount; ++i) {
    std::string path = dir + "/" + std::string(ResourceTypeName(static_cast<ResourceType>(i))) + ".ndjson";
    files_[i] = std::fopen(path.c_str(), "wb");
    if (files_[i] == nullptr) return IoError("cannot open " + path + ": " + std::strerror(errno));
    buffers_[i].reserve(kBufferSize + 64 * 1024);
  }
  return Status::Ok();
}

Status DirectorySink::Write(ResourceType type, std::string_view json) {
  size_t i = static_cast<size_t>(type);
  if (files_[i] == nullptr) return IoError("DirectorySink is not open");
  std::string& buffer = buffers_[i];
  buffer.append(json);
  buffer.push_back('\n');
  if (buffer.size() >= kBufferSize) return Flush(i);
  return Status::Ok();
}

Status DirectorySink::Flush(size_t index) {
  std::string& buffer = buffers_[index];
  if (!buffer.empty() && std::fwrite(buffer.data(), 1, buffer.size(), files_[index]) != buffer.size()) {
    return IoError("cannot write " + dir_ + "/" + std::string(ResourceTypeName(static_cast<ResourceType>(index))) +
                   ".ndjson: " + std::strerror(errno));
  }
  buffer.clear();
  return Status::Ok();
}

Status DirectorySink::Close() {
  Status first;
  for (size_t i = 0; i < kResourceTypeCount; ++i) {
    if (files_[i] == nullptr) continue;
    Status s = Flush(i);
    if (std::fclose(files_[i]) != 0 && s.ok()) s = IoError("cannot close a file in " + dir_);
    files_[i] = nullptr;
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

Result<Counts> GenerateToDirectory(const Options& options, const std::string& dir) {
  RETURN_IF_ERROR(CheckOptions(options));
  DirectorySink sink;
  RETURN_IF_ERROR(sink.Open(dir));
  Result<Counts> counts = Generate(options, sink);
  Status closed = sink.Close();
  if (!counts.ok()) return counts.status();
  RETURN_IF_ERROR(closed);
  return counts;
}

}  // namespace bevan::synth
