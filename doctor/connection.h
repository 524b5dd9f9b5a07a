// One synchronous connection to a Redis (or Sentinel) through hiredis, for corral doctor: a
// one-shot tool, so blocking calls with a timeout, no event loop.
//
//   open(endpoint): connect (TCP or unix) --AUTH [user] password--> --SELECT db--> Connection
//   command(args) / append(args) ... read(): replies as hiredis builds them
//
// hiredis 0.14 has no TLS: endpoints over TLS are refused by the caller (doctor.cc) before they
// get here. Errors never carry a password: they are hiredis's or Redis's own texts (Redis does
// not echo a password in WRONGPASS), prefixed with the address.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace corral::doctor {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// Where to connect and as whom.
struct Endpoint {
  config::ListenAddress addr;
  std::string user;      // "" = the default user
  std::string password;  // "" = no AUTH
  int db = 0;
};

class Connection {
 public:
  // Connects within timeout (each later call has the same timeout), authenticates and selects
  // the db. nullptr and *err on failure.
  static std::unique_ptr<Connection> open(const Endpoint& e, std::chrono::milliseconds timeout,
                                          std::string* err);

  // Runs one command. nullptr and *err when the connection failed (an error reply is a Reply
  // of type REDIS_REPLY_ERROR, not a failure).
  Reply command(const std::vector<std::string>& args, std::string* err);
  // Pipelining: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& args);
  Reply read(std::string* err);

  const std::string& address() const { return address_; }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

 private:
  Connection(redisContext* ctx, std::string address) : ctx_(ctx), address_(std::move(address)) {}
  redisContext* ctx_;
  std::string address_;
};

// The text of a string, status or error reply; "" for other types.
std::string replyText(const redisReply* r);

// The primary's address as the first sentinel that knows it says (SENTINEL
// get-master-addr-by-name), or nullopt and *err naming what each sentinel answered.
std::optional<config::ListenAddress> askSentinels(const config::SentinelConfig& s,
                                                  std::chrono::milliseconds timeout,
                                                  std::string* err);

}  // namespace corral::doctor
