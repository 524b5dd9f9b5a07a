// One client connection: framing, local answers, routing, and replies in request order.
//
//   socket ──recv──> (worker scratch | in_) ──RequestParser──> handleRequest
//        handleRequest: local answer ─> slot ready      forward ─> Connection::enqueue(seq)
//   onUpstreamReply(seq) ──> head slot? append to out_ : store in slot ──> flushed once a turn
//
// Every request takes a sequence number and a slot in pending_; replies are written only from
// the head, so a client sees replies in request order even when they come from different
// upstreams. Views into the input never outlive handleRequest: forwarding copies the frame into
// the upstream's out buffer.
//
// Lifetime: a closed client is deleted by its worker once no upstream connection still holds
// one of its requests (inflight_refs_ == 0).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/codec/buffer.h"
#include "proxy/codec/resp.h"
#include "proxy/codec/ring.h"
#include "proxy/net/command_kind.h"
#include "proxy/net/stats.h"
#include "proxy/upstream/upstream.h"

namespace corral::commands {
struct CommandInfo;
}
namespace corral::policies {
struct PolicyCounters;
struct FillPolicy;
struct FillOutcome;
class PolicySet;
}  // namespace corral::policies

namespace corral::net {

class Worker;

// Commands corral sends right behind a request, whose replies the client never sees (TTL
// follow-ups, lease deletions): their RESP bytes back to back, so that a warm list is reused
// without allocating.
class HiddenCommands {
 public:
  void add(std::initializer_list<std::string_view> args);  // encodes one command
  void append(const HiddenCommands& other);
  void clear() {
    bytes_.clear();
    ends_.clear();
  }
  bool empty() const { return ends_.empty(); }
  // Enqueues each command on conn with the sink that swallows its reply.
  void sendOn(upstream::Connection* conn, upstream::ReplySink* sink) const;

 private:
  std::string bytes_;
  std::vector<size_t> ends_;  // end offset of each command in bytes_
};

// What a GET of a fill policy's key needs once its reply is back (see Client::onFillReply).
struct FillReq {
  std::shared_ptr<const policies::PolicySet> set;  // keeps `policy` alive across a reload
  const policies::FillPolicy* policy = nullptr;
  std::string key;
  std::string path;
  bool fresh = false;  // sent as GET+PTTL: the reply is {value, pttl}
  // MGET: the keys that may be filled (key and path empty above).
  struct Item {
    uint32_t pos = 0;  // index in the reply array
    const policies::FillPolicy* policy = nullptr;
    std::string key;
    std::string path;
  };
  std::vector<Item> mget;
};

class Client final : public upstream::ReplySink {
 public:
  Client(Worker& worker, int fd, uint64_t id, std::string peer);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Replies corral changes on the way back (rare commands only; never GET/SET).
  // kExecAbort: EXEC of a transaction in which corral refused a command (a policy spoke) was
  // sent as DISCARD; the client sees Redis's EXECABORT.
  enum class Rewrite : uint8_t { kNone, kInfo, kConfigGet, kExecAbort };

  void start();  // begins reading

  // upstream::ReplySink
  void onUpstreamReply(uint64_t seq, std::string_view reply) override;

  // Worker's end-of-turn write; returns false when the client closed.
  void flush();
  // Re-evaluates backpressure after replies drained; may parse input held while paused.
  void maybeResume();
  void closeNow(const char* why);
  void applyLimits(const codec::Limits& limits) { parser_.setLimits(limits); }
  // Drain: stop reading; close when nothing is pending.
  void beginDrain();

  bool closed() const { return fd_ < 0; }
  uint32_t inflightRefs() const { return inflight_refs_; }
  size_t pendingCount() const { return pending_.size(); }
  uint64_t id() const { return id_; }

  // Worker bookkeeping.
  bool in_dirty_ = false;
  bool in_dead_ = false;
  size_t index_ = 0;  // position in Worker::all_clients_

 private:
  // A request's place in the reply order. Empty while waiting: a reply for the head slot goes
  // straight to out_, so only a reply that overtakes the head is stored (one allocation).
  struct Slot {
    std::unique_ptr<std::string> reply;
    Rewrite rewrite = Rewrite::kNone;  // applied to the reply when it arrives
    // A GET-like read of a policy key: its reply counts as the policy's hit or miss.
    policies::PolicyCounters* hitmiss = nullptr;
    // A GET of a fill policy's key: its reply is looked at (miss -> fill; stale -> refresh).
    std::unique_ptr<struct FillReq> fill{};
    int64_t start_us = 0;       // for the latency histogram
    uint16_t cmd = kNoCommand;  // CommandInfo::id, for per-command errors
  };
  static constexpr uint16_t kNoCommand = Stats::kNoCommand;
  uint16_t cur_cmd_ = kNoCommand;  // the request being handled: Stats::Worker::countCommand's slot

  static void onEvent(evutil_socket_t fd, short what, void* arg);
  void onReadable();
  // Parses and handles requests in data[0, len); returns bytes consumed.
  size_t process(const char* data, size_t len);
  // Returns false when the request must wait until this client's requests in flight are
  // answered (moving to or from a dedicated connection keeps their order that way).
  bool handleRequest(const codec::Request& req);
  bool dispatch(const codec::Request& req);  // handleRequest's body
  void handlePinned(const commands::CommandInfo* cmd, CommandKind what, const codec::Request& req);
  // Runs the policy engine on a request. Returns false when a policy refused it (the error is
  // already queued); otherwise *use is the request to send (req, or rewritten_) and the
  // decision's follow-ups and routing hints are armed for forward().
  bool applyPolicies(const commands::CommandInfo* cmd, const codec::Request& req,
                     const codec::Request** use);
  void rejectByPolicy(std::string_view error);
  // The reply of a GET with a fill attached (Slot::fill): a hit is answered, a miss starts or
  // joins a fill; the slot stays pending until the fill answers.
  void onFillReply(uint64_t idx, uint64_t seq, std::string_view reply);
  void startFill(uint64_t seq, std::unique_ptr<FillReq> f, const std::string* stale);
  void onFillDone(uint64_t seq, const policies::FillOutcome& o);
  // MGET with fills: the misses among the fill keys are filled (a few at a time) and the
  // array is answered once all are back.
  void onMgetFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply);
  struct MgetJob {
    uint64_t seq = 0;
    std::vector<std::string> elems;   // the reply's elements, misses replaced as fills answer
    std::vector<FillReq::Item> todo;  // the misses to fill
    size_t next = 0;                  // todo[next] is the next to start
    size_t running = 0;
    bool answered = false;
    std::shared_ptr<const policies::PolicySet> set;  // keeps the items' policies alive
  };
  void pumpMget(const std::shared_ptr<MgetJob>& job);
  // Who the client is for rate limits: AUTH user, else CLIENT SETNAME name, else peer IP.
  std::string_view identity() const;
  // read_your_writes: remembers a write / tells whether a read must go to the primary.
  void noteWrite(std::string_view key, int64_t window_ms);
  bool recentlyWritten(std::string_view key) const;
  bool handleLocal(const commands::CommandInfo* cmd, CommandKind what, const codec::Request& req);
  void forward(upstream::Connection* conn, const codec::Request& req, int64_t timeout_ms,
               Rewrite rewrite = Rewrite::kNone);
  // INFO plus corral's "# Proxy" section; CONFIG GET without corral's upstream secrets.
  std::string rewriteReply(Rewrite rewrite, std::string_view reply);
  void appendProxyInfo(std::string& text);
  void maybeUnpin();  // gives the dedicated connection back once no state needs it
  void forwardRaw(const codec::Request& req);  // pipe mode: bytes to the dedicated connection
  // RESP bytes of args, in the worker's scratch string (valid until the next use of it).
  std::string_view encode(const std::vector<std::string_view>& args);
  // What to send upstream for req: its own bytes, or a multibulk for an inline command.
  std::string_view wireBytes(const codec::Request& req);
  void onPipe(uint64_t seq, std::string_view frame);
  void trackPubsubRequest(const codec::Request& req);
  bool overSubscriberLimits();  // closes the client and returns true past the limits
  void trackPubsubReply(std::string_view frame);
  void replyArity(const commands::CommandInfo* cmd);
  // Queues a reply produced by corral (an error, PONG, ...), in order with forwarded ones.
  void replyLocal(std::string_view bytes);
  void replyError(std::string_view msg);  // msg without '-' and CRLF
  void deliver(std::string_view bytes);   // append to out_ and mark dirty
  // A reply for pending_[idx]: out now if it is the head (then any ready ones behind it),
  // else kept in its slot.
  void place(uint64_t idx, std::string_view reply);
  bool overLimits() const;
  void pauseReading();
  void setReadEnabled(bool on);
  void setWriteEnabled(bool on);

  Worker& worker_;
  int fd_;
  uint64_t id_;
  std::string peer_;
  std::string name_;            // CLIENT SETNAME
  std::string user_;            // AUTH user ("default" for AUTH <password>), when auth is on
  std::string peer_ip_;         // peer_ without the port
  bool authenticated_ = false;  // meaningful only when auth.users is configured
  // Answers an unauthenticated client (auth enabled); true when the request was handled.
  bool gateAuth(const commands::CommandInfo* cmd, CommandKind what, const codec::Request& req);
  // AUTH / HELLO ... AUTH credentials: replies WRONGPASS and counts on failure.
  bool authenticate(std::string_view user, std::string_view password);
  // HELLO's AUTH and SETNAME options: false (and an error replied) when they are wrong.
  bool helloOptionsOk(const codec::Request& req);
  event* rev_ = nullptr;
  event* wev_ = nullptr;
  codec::Buffer in_;  // only bytes of a frame not yet complete (or held while paused)
  codec::Buffer out_;
  codec::RequestParser parser_;
  codec::Request req_;
  codec::Ring<Slot> pending_;
  const commands::CommandInfo* last_cmd_ = nullptr;  // lookup cache (plain commands only)
  uint64_t head_seq_ = 0;                            // sequence number of pending_.front()
  uint64_t next_seq_ = 0;
  uint32_t inflight_refs_ = 0;  // requests held by upstream connections
  uint32_t primary_slot_ = 0;
  int db_ = 0;  // the client's SELECTed db
  // A dedicated primary connection while the client holds state on it (MULTI, WATCH, a
  // blocking command); every command goes there meanwhile.
  std::unique_ptr<upstream::Connection> dedicated_;
  bool in_multi_ = false;
  bool watching_ = false;
  bool waiting_idle_ = false;  // paused until inflight_refs_ == 0
  // Pipe mode (pub/sub, MONITOR, CLIENT TRACKING/REPLY, RESP3): for the rest of its life the
  // client talks to its dedicated connection byte for byte; Redis's frames come back in order.
  bool pipe_ = false;
  // Pipe entered for RESP2 pub/sub only: corral follows the subscriptions (as sent) and the
  // replies still due, and leaves the pipe after the last unsubscribe is answered.
  bool pubsub_only_ = false;
  size_t pubsub_expected_ = 0;
  std::set<std::string> channels_, patterns_, shard_channels_;
  int64_t soft_since_ms_ = -1;  // since when the output is above limits.pubsub_soft_bytes
  bool read_enabled_ = false;
  bool write_enabled_ = false;
  bool paused_ = false;             // backpressure: not reading
  bool close_after_flush_ = false;  // QUIT, protocol error or drain
  bool draining_ = false;

  // Policies (see applyPolicies).
  codec::Request rewritten_;  // a request whose args a policy changed (views into decision)
  std::string rewrite_buf_;   // rewritten_.frame when only arguments were appended
  policies::PolicyCounters* next_hitmiss_ = nullptr;
  std::unique_ptr<FillReq> next_fill_;  // armed by applyPolicies for forward()
  HiddenCommands hidden_;               // sent right behind the request by forward()
  bool policy_replay_ = false;          // the request being handled was decided once already
  // Routing a policy asked for: default, the primary (read-your-writes), or a ReadFrom value.
  static constexpr int8_t kRouteDefault = -1;
  static constexpr int8_t kRoutePrimary = -2;
  int8_t policy_route_ = kRouteDefault;
  bool multi_dirty_ = false;  // a policy refused a command inside MULTI: EXEC aborts
  // Hidden commands of the commands queued inside MULTI: sent after EXEC (not inside the
  // transaction, whose reply array the client must see unchanged).
  HiddenCommands multi_hidden_;
  // The transaction is over (EXEC, DISCARD, RESET, or its connection died): forget its state.
  void leaveMulti() {
    in_multi_ = watching_ = false;
    multi_dirty_ = false;
    multi_hidden_.clear();
  }
  // read_your_writes: key -> until (loop ms). Bounded; when full of live entries, every read
  // goes to the primary until ryw_all_until_.
  std::unordered_map<std::string, int64_t> ryw_;
  int64_t ryw_all_until_ = 0;
};

}  // namespace corral::net
