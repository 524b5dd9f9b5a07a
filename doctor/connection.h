// One synchronous connection to a Redis (or Sentinel), for corral doctor: a one-shot tool, so
// blocking calls with a deadline, no event loop.
//
//   open(endpoint): dial (TCP or unix, dial.h) --[TLS: upstream.tls's SSL_CTX, the proxy's own
//   (proxy/tls), SNI and name check as the proxy does]--> AUTH [user] password --> SELECT db
//   command(args) / append(args) ... read():
//     redisFormatCommandArgv --> socket or TLS stream --> ReplyReader (hiredis's redisReader)
//     --> the reply objects hiredis builds
//
// Plain and TLS connections share everything but the two calls that move bytes. Errors never
// carry a password: they are our texts, OpenSSL's reasons or Redis's own (Redis does not echo a
// password in WRONGPASS), prefixed with the address.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "doctor/dial.h"
#include "proxy/tls/context.h"
#include "proxy/tls/stream.h"

namespace corral::doctor {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// Where to connect and as whom. addr.tls: over TLS (rediss://, a tls:// sentinel, or
// upstream.tls.enabled).
struct Endpoint {
  config::ListenAddress addr;
  std::string user;      // "" = the default user
  std::string password;  // "" = no AUTH
  int db = 0;
};

// What every connection of one run shares.
struct Dialing {
  std::chrono::milliseconds timeout{2000};  // connect, TLS handshake, each reply
  // upstream.tls as the proxy builds it (tls::Holder::client); null: TLS endpoints are refused.
  // Not owned; outlives the connections.
  const tls::Holder* tls = nullptr;
  std::string server_name;  // upstream.tls.server_name: SNI and the name checked; "" = the host
};

// Replies out of the bytes a server sent, fed in pieces of any size: hiredis's redisReader, so
// the reply objects are those redisGetReply builds. Pure: no I/O.
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  void feed(const char* data, size_t len);
  // 1: *out is the next whole reply; 0: more bytes are needed; -1: the bytes are not RESP (*err).
  int next(Reply* out, std::string* err);

 private:
  redisReader* reader_;
};

// The text of a TLS failure for an operator: OpenSSL's reason (`why`, as tls::Stream::error()
// gives it) and what to change, given the name the certificate was checked against.
std::string tlsFailureText(const std::string& why, const std::string& name);

class Connection {
 public:
  // Connects within d.timeout (TLS: the handshake too; each later reply has the same timeout),
  // authenticates and selects the db. nullptr and *err on failure.
  static std::unique_ptr<Connection> open(const Endpoint& e, const Dialing& d, std::string* err);

  // Runs one command. nullptr and *err when the connection failed (an error reply is a Reply
  // of type REDIS_REPLY_ERROR, not a failure). After a failure every call fails the same way.
  Reply command(const std::vector<std::string>& args, std::string* err);
  // Pipelining: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& args);
  Reply read(std::string* err);

  const std::string& address() const { return address_; }
  // The TLS version in use ("TLSv1.3"), or "" for a plain TCP or unix connection.
  std::string tlsVersion() const { return tls_ ? tls_->version() : ""; }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

 private:
  Connection(int fd, std::string address, std::chrono::milliseconds timeout)
      : fd_(fd), address_(std::move(address)), timeout_(timeout) {}
  bool handshake(Clock::time_point deadline, std::string* err);
  bool awaitVerdict(Clock::time_point started, Clock::time_point deadline);  // TLS 1.3
  bool flush(Clock::time_point deadline);
  bool fill(Clock::time_point deadline);  // one read into reader_
  bool wait(bool want_write, Clock::time_point deadline, const char* what);
  bool fail(const std::string& why);  // records the failure (with the address); false
  bool lost(const std::string& why);  // fail(), with a hint when TLS ends before any reply

  int fd_;
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<tls::Stream> tls_;
  std::string tls_name_;  // the name sent as SNI and checked in the certificate
  ReplyReader reader_;
  std::string out_;        // formatted commands not yet sent
  bool answered_ = false;  // a reply has been read (a TLS refusal comes before the first)
  std::string failed_;     // why the connection is unusable ("" while it works)
};

// The text of a string, status or error reply; "" for other types.
std::string replyText(const redisReply* r);

// The primary's address as the first sentinel that knows it says (SENTINEL
// get-master-addr-by-name), or nullopt and *err naming what each sentinel answered. Sentinels
// written tls://host:port are asked over TLS.
std::optional<config::ListenAddress> askSentinels(const config::SentinelConfig& s, const Dialing& d,
                                                  std::string* err);

}  // namespace corral::doctor
