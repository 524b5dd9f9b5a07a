#include "proxy/upstream/script.h"

#include <charconv>
#include <vector>

#include "proxy/codec/resp.h"

namespace corral::upstream {

namespace {

// One script call in flight: receives exactly one reply, then deletes itself.
struct Call final : ReplySink {
  std::function<void(std::string_view)> done;
  void onUpstreamReply(uint64_t, std::string_view reply) override {
    std::function<void(std::string_view)> d = std::move(done);
    delete this;
    d(reply);
  }
};

}  // namespace

std::string_view errorText(std::string_view reply) {
  std::string_view e = reply.substr(1);
  if (e.size() >= 2 && e.substr(e.size() - 2) == "\r\n") e.remove_suffix(2);
  return e;
}

void runScript(Connection* conn, policies::Timer& timer, std::string& scratch,
               std::string_view script, std::initializer_list<std::string_view> keys,
               std::initializer_list<std::string_view> args,
               std::function<void(std::string_view)> done, int64_t timeout_ms) {
  runScript(conn, timer, scratch, script, std::span(keys.begin(), keys.size()),
            std::span(args.begin(), args.size()), std::move(done), timeout_ms);
}

void runScript(Connection* conn, policies::Timer& timer, std::string& scratch,
               std::string_view script, std::span<const std::string_view> keys,
               std::span<const std::string_view> args, std::function<void(std::string_view)> done,
               int64_t timeout_ms) {
  if (conn == nullptr || !conn->accepting()) {
    // Never answer from inside the caller: it may be in the middle of its own update.
    std::string err = conn != nullptr ? conn->unavailableError()
                                      : std::string("-ERR corral: no primary connection\r\n");
    timer.after(0, [done = std::move(done), err = std::move(err)] { done(err); });
    return;
  }
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVAL");
  argv.push_back(script);
  char n[8];
  auto r = std::to_chars(n, n + sizeof n, keys.size());
  argv.emplace_back(n, static_cast<size_t>(r.ptr - n));
  for (std::string_view k : keys) argv.push_back(k);
  for (std::string_view a : args) argv.push_back(a);
  scratch.clear();
  codec::appendCommand(scratch, argv);
  auto* call = new Call;
  call->done = std::move(done);
  conn->enqueue(call, 0, scratch, timeout_ms);
}

}  // namespace corral::upstream
