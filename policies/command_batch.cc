#include "policies/command_batch.h"

#include "proxy/codec/resp.h"

namespace corral::policies {

void CommandBatch::add(std::initializer_list<std::string_view> args) {
  codec::appendArrayHeader(bytes_, args.size());
  for (std::string_view a : args) codec::appendBulk(bytes_, a);
  ends_.push_back(bytes_.size());
}

void CommandBatch::append(const CommandBatch& other) {
  const size_t base = bytes_.size();
  bytes_ += other.bytes_;
  for (size_t e : other.ends_) ends_.push_back(base + e);
}

}  // namespace corral::policies
