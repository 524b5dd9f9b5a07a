// libFuzzer target for net::parseCommandReply and the learnt overlay built from what it reads.
//
//   input --parseCommandReply--> ParsedCommands --Overlay::build--> setOverlay
//     --> every learnt entry: found by lookup() under its own name, and extractKeys() on
//         argument lists cut from the input keeps every key index inside the arguments
//
// A COMMAND reply comes from the upstream, which corral trusts for framing but not for sense:
// whatever the bytes, the reader must stay within them, the overlay within its bounds, and key
// extraction with any learnt key spec must end (no zero step, no overflowing positions).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "commands/overlay.h"
#include "proxy/net/command_reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using corral::commands::CommandInfo;
using corral::commands::Overlay;

// Argument lists for extractKeys: the entry's name, then the input cut at '\n' (at most 64
// pieces), so specs meet keywords, counts and lengths the fuzzer chose.
std::vector<std::string_view> argsFor(std::string_view name, std::string_view input) {
  std::vector<std::string_view> args{name};
  size_t start = 0;
  while (start <= input.size() && args.size() < 65) {
    const size_t end = input.find('\n', start);
    args.push_back(input.substr(start, end == std::string_view::npos ? input.npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return args;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  corral::net::ParsedCommands parsed;
  if (!corral::net::parseCommandReply(input, &parsed)) {
    FUZZ_CHECK(parsed.commands.empty());
    return 0;
  }
  FUZZ_CHECK(parsed.commands.size() <= corral::net::kMaxReplyEntries);
  Overlay::Report report;
  const auto overlay = Overlay::build(parsed.commands, &report);
  FUZZ_CHECK(report.learnt == overlay->size());
  FUZZ_CHECK(overlay->size() <= corral::commands::kMaxLearntCommands);
  corral::commands::setOverlay(overlay.get());
  std::vector<uint32_t> keys;
  for (const CommandInfo* e : overlay->entries()) {
    FUZZ_CHECK(e->id == corral::commands::kLearntId);
    const size_t bar = e->name.find('|');
    const std::string_view parts[] = {e->name.substr(0, bar),
                                      bar == std::string_view::npos ? "" : e->name.substr(bar + 1)};
    const CommandInfo* found =
        corral::commands::lookup(std::span(parts, bar == std::string_view::npos ? 1 : 2));
    FUZZ_CHECK(found == e);
    std::vector<std::string_view> args = argsFor(e->name, input);
    if (bar != std::string_view::npos) {
      args[0] = parts[0];
      args.insert(args.begin() + 1, parts[1]);
    }
    for (size_t n = 1; n <= args.size(); ++n) {
      const std::span<const std::string_view> some(args.data(), n);
      if (corral::commands::lookup(some) != e) continue;  // a container with fewer args
      if (!corral::commands::arityOk(*e, n)) continue;
      if (corral::commands::extractKeys(*e, some, keys)) {
        for (uint32_t k : keys) FUZZ_CHECK(k >= 1 && k < n);
        FUZZ_CHECK(keys.size() <= n * e->nkeyspecs);
      }
    }
  }
  corral::commands::setOverlay(nullptr);
  return 0;
}
