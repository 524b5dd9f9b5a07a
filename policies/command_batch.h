// Commands corral sends on its own behalf right behind a client's request, whose replies the
// client never sees (TTL follow-ups, lease deletions): their RESP bytes back to back.
//
//   decide --add({"PEXPIRE", key, ms, "NX"})--> CommandBatch --command(i)--> the proxy enqueues
//   each one on an upstream connection, with a sink that swallows its reply
//
// A batch is reused: clear() keeps its capacity, so a warm batch encodes without allocating.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace corral::policies {

class CommandBatch {
 public:
  // Encodes one command (a RESP array of bulk strings) at the end of the batch.
  void add(std::initializer_list<std::string_view> args);
  // Appends every command of other (the proxy gathers a transaction's batches this way).
  void append(const CommandBatch& other);
  void clear() {
    bytes_.clear();
    ends_.clear();
  }
  bool empty() const { return ends_.empty(); }
  size_t size() const { return ends_.size(); }
  // The i-th command's RESP bytes (i < size()); valid until the batch changes.
  std::string_view command(size_t i) const {
    const size_t start = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(bytes_).substr(start, ends_[i] - start);
  }

 private:
  std::string bytes_;
  std::vector<size_t> ends_;  // end offset of each command in bytes_
};

}  // namespace corral::policies
