#include "doctor/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace corral::doctor {

namespace {

constexpr size_t kReadChunk = 16 * 1024;

// What a server closing a TLS connection before its first reply usually means.
constexpr const char* kRefusedHint =
    " (does it want a client certificate, upstream.tls.cert_file and key_file, or refuse the one "
    "given?)";
constexpr const char* kPlainHint =
    " (is it a TLS port? then rediss:// or upstream.tls.enabled, with upstream.tls)";

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string millisText(std::chrono::milliseconds t) { return std::to_string(t.count()) + "ms"; }

}  // namespace

// ---- ReplyReader

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {}

ReplyReader::~ReplyReader() { redisReaderFree(reader_); }

void ReplyReader::feed(const char* data, size_t len) { redisReaderFeed(reader_, data, len); }

int ReplyReader::next(Reply* out, std::string* err) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    *err = std::string("protocol error: ") + reader_->errstr;
    return -1;
  }
  if (raw == nullptr) return 0;
  out->reset(static_cast<redisReply*>(raw));
  return 1;
}

// ---- TLS failures

std::string tlsFailureText(const std::string& why, const std::string& name) {
  // OpenSSL's reasons name the problem; the operator also needs the setting that fixes it.
  if (contains(why, "hostname mismatch") || contains(why, "IP address mismatch")) {
    return why + ": the certificate does not name " + (name.empty() ? "the server" : name) +
           " (set upstream.tls.server_name to a name the certificate carries)";
  }
  if (contains(why, "local issuer") || contains(why, "self-signed") ||
      contains(why, "self signed") || contains(why, "unable to get issuer")) {
    return why +
           ": the certificate is not signed by a CA doctor trusts (set upstream.tls.ca_file to "
           "the CA that signed Redis's certificate; without it the system store is used)";
  }
  if (contains(why, "certificate required") || contains(why, "handshake failure")) {
    return why + ": the server may want a client certificate (upstream.tls.cert_file and key_file)";
  }
  if (contains(why, "wrong version number") || contains(why, "packet length too long") ||
      contains(why, "record layer failure")) {
    return why + ": the server does not speak TLS there (is it Redis's tls-port?)";
  }
  return why;
}

// ---- Connection

std::unique_ptr<Connection> Connection::open(const Endpoint& e, const Dialing& d,
                                             std::string* err) {
  const std::string address = config::endpointText(e.addr);
  const Clock::time_point deadline = Clock::now() + d.timeout;
  if (e.addr.tls && d.tls == nullptr) {
    *err = address + ": TLS, but no upstream.tls context";  // doctor.cc builds one whenever needed
    return nullptr;
  }
  const int fd = dial(e.addr, deadline, err);
  if (fd < 0) return nullptr;
  std::unique_ptr<Connection> c(new Connection(fd, address, d.timeout));
  if (e.addr.tls) {
    c->tls_name_ = d.server_name.empty() ? e.addr.host : d.server_name;
    c->tls_ = tls::Stream::connect(d.tls->current(), fd, c->tls_name_, d.tls->verifies(), nullptr);
    if (c->tls_ == nullptr) {
      *err = address + ": TLS: cannot start: " + tls::lastError();
      return nullptr;
    }
    if (!c->handshake(deadline, err)) return nullptr;
  }
  auto step = [&](const std::vector<std::string>& args, const char* what) {
    Reply r = c->command(args, err);
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR) {
      *err = address + ": " + what + " refused: " + replyText(r.get());
      return false;
    }
    return true;
  };
  if (!e.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!e.user.empty()) auth.push_back(e.user);
    auth.push_back(e.password);
    if (!step(auth, "AUTH")) return nullptr;
  }
  if (e.db != 0 && !step({"SELECT", std::to_string(e.db)}, "SELECT")) return nullptr;
  return c;
}

Connection::~Connection() {
  tls_.reset();  // SSL_free before the socket it wraps closes
  ::close(fd_);
}

bool Connection::fail(const std::string& why) {
  if (failed_.empty()) failed_ = address_ + ": " + why;
  return false;
}

bool Connection::wait(bool want_write, Clock::time_point deadline, const char* what) {
  if (waitFor(fd_, want_write ? POLLOUT : POLLIN, deadline)) return true;
  return fail(std::string("timed out after ") + millisText(timeout_) + " " + what);
}

bool Connection::handshake(Clock::time_point deadline, std::string* err) {
  const Clock::time_point started = Clock::now();
  for (;;) {
    const ssize_t rc = tls_->handshake();
    if (rc == 1) {
      if (std::string(tls_->version()) != "TLSv1.3" || awaitVerdict(started, deadline)) return true;
      break;
    }
    if (rc == 0) {
      fail("TLS handshake: the server closed the connection (is it Redis's tls-port?)");
      break;
    }
    if (rc == tls::Stream::kFailed) {
      fail("TLS handshake failed: " + tlsFailureText(tls_->error(), tls_name_));
      break;
    }
    if (!waitFor(fd_, tls_->wantsWrite() ? POLLOUT : POLLIN, deadline)) {
      fail("TLS handshake timed out after " + millisText(timeout_) +
           " (is it Redis's tls-port, and does it answer?)");
      break;
    }
  }
  *err = failed_;
  return false;
}

bool Connection::lost(const std::string& why) {
  // Before its first reply, a TLS connection that ends is most likely refused for its client
  // certificate (an alert that says so gets its hint from tlsFailureText already), and a plain
  // one most likely reached a TLS port.
  if (answered_ || contains(why, "cert_file")) return fail(why);
  return fail(why + (tls_ != nullptr ? kRefusedHint : kPlainHint));
}

bool Connection::awaitVerdict(Clock::time_point started, Clock::time_point deadline) {
  // TLS 1.3 ends the client's handshake before the server has judged our certificate; its
  // verdict follows at once: session tickets, or an alert ("certificate required"). Read it
  // before writing anything: a server that refuses closes with our first command unread, and
  // the reset that makes its kernel send discards the alert on our side. Waited for about as
  // long as the handshake took (the verdict is half a round trip behind it); a server that
  // sends no tickets costs that wait, then the connection goes on as usual.
  const Clock::time_point until =
      std::min(deadline, Clock::now() + (Clock::now() - started) + std::chrono::milliseconds(100));
  char buf[kReadChunk];
  while (waitFor(fd_, POLLIN, until)) {
    const ssize_t n = tls_->read(buf, sizeof buf);
    if (n > 0) {
      reader_.feed(buf, static_cast<size_t>(n));  // not expected: a server speaks when asked
      return true;
    }
    if (n == 0) return lost("the server closed the connection after the TLS handshake");
    if (n == tls::Stream::kFailed) {
      return lost("TLS: " + tlsFailureText(tls_->error(), tls_name_));
    }
    if (!tls_->wantsWrite()) return true;  // tickets read: the server accepted us
  }
  return true;
}

bool Connection::flush(Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < out_.size()) {
    const char* p = out_.data() + sent;
    const size_t left = out_.size() - sent;
    if (tls_ == nullptr) {
      const ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        if (!wait(true, deadline, "sending")) return false;
      } else {
        return fail(std::string("send: ") + std::strerror(errno));
      }
      continue;
    }
    const ssize_t n = tls_->write(p, left);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n == tls::Stream::kAgain) {
      if (!wait(tls_->wantsWrite(), deadline, "sending")) return false;
    } else {
      return lost("TLS: " + tlsFailureText(tls_->error(), tls_name_));
    }
  }
  out_.clear();
  return true;
}

bool Connection::fill(Clock::time_point deadline) {
  char buf[kReadChunk];
  for (;;) {
    if (tls_ == nullptr) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        reader_.feed(buf, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) return lost("the server closed the connection");
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return lost(std::string("recv: ") + std::strerror(errno));
      if (!wait(false, deadline, "waiting for a reply")) return false;
      continue;
    }
    // Read before waiting: decrypted bytes may already wait inside OpenSSL.
    const ssize_t n = tls_->read(buf, sizeof buf);
    if (n > 0) {
      reader_.feed(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return lost("the server closed the connection");
    if (n == tls::Stream::kFailed) {
      return lost("TLS: " + tlsFailureText(tls_->error(), tls_name_));
    }
    if (!wait(tls_->wantsWrite(), deadline, "waiting for a reply")) return false;
  }
}

Reply Connection::command(const std::vector<std::string>& args, std::string* err) {
  append(args);
  return read(err);
}

void Connection::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n =
      redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (n < 0) {
    fail("out of memory");
    return;
  }
  out_.append(cmd, static_cast<size_t>(n));
  redisFreeCommand(cmd);
}

Reply Connection::read(std::string* err) {
  const Clock::time_point deadline = Clock::now() + timeout_;
  Reply r;
  if (failed_.empty() && (out_.empty() || flush(deadline))) {
    std::string why;
    for (;;) {
      const int got = reader_.next(&r, &why);
      if (got == 1) {
        answered_ = true;
        return r;
      }
      if (got < 0) {
        fail(why);
        break;
      }
      if (!fill(deadline)) break;
    }
  }
  *err = failed_;
  return nullptr;
}

std::string replyText(const redisReply* r) {
  if (r == nullptr) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  return "";
}

std::optional<config::ListenAddress> askSentinels(const config::SentinelConfig& s, const Dialing& d,
                                                  std::string* err) {
  std::string why;
  for (const config::ListenAddress& a : s.addresses) {
    Endpoint e{a, s.user, s.password, 0};
    std::string one;
    std::unique_ptr<Connection> c = Connection::open(e, d, &one);
    Reply r;
    if (c) r = c->command({"SENTINEL", "get-master-addr-by-name", s.master}, &one);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
      config::ListenAddress out;
      out.host = replyText(r->element[0]);
      const std::string port = replyText(r->element[1]);
      out.port = static_cast<uint16_t>(std::strtoul(port.c_str(), nullptr, 10));
      out.text = out.host + ":" + port;
      return out;
    }
    if (r)
      one =
          config::endpointText(a) + ": " +
          (r->type == REDIS_REPLY_ERROR ? replyText(r.get()) : "does not know master " + s.master);
    why += (why.empty() ? "" : "; ") + one;
  }
  *err = "no sentinel named the primary of " + s.master + ": " + why;
  return std::nullopt;
}

}  // namespace corral::doctor
