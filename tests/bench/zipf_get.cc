// zipf_get: a GET load generator with Zipf-distributed keys (redis-benchmark has only uniform
// random keys). A benchmark tool, not a test; near_zipf_bench.sh drives it.
//
//   zipf_get -p PORT [-c 50] [-P 1] [-k 100000] [-s 0.99] [-d 5 | -n REQUESTS] [-w 0] [-r 0]
//   zipf_get -p PORT -k 100000 --fill 32      (SET every key to a 32-byte value, then exit)
//
//   trace: 4M Zipf ranks drawn up front (fixed seed); rank i is the key key:%012d of i (not
//          shuffled: key:000000000000 is the hottest key)
//     --> one thread, one epoll loop, C connections; each sends a batch of P GETs (the next P
//         keys of its own stretch of the trace), reads P replies, then sends the next batch
//     --> -r RATE: batches leave no faster than RATE requests/s over all connections (an idle
//         connection waits for its turn), so latency can be measured at a fixed, modest load
//     --> per reply: latency = reply read - its batch sent; warm-up (-w s) batches not counted
//     --> one line: ops_s p50_ms p99_ms p999_ms max_ms requests replies nil errors
//
// Honesty: every reply is framed (RESP2 and RESP3 types, nested aggregates); a reply with no
// request outstanding, a connection closed with requests outstanding, or replies != requests at
// the end exits 2; error replies exit 1. nil replies (a missing key) are counted, not errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/zipf.h"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  int conns = 50;
  int pipeline = 1;
  size_t keys = 100000;
  double theta = 0.99;
  double seconds = 5;
  uint64_t requests = 0;  // 0: run for `seconds`
  double warmup = 0;
  double rate = 0;  // requests/s over all connections; 0: as fast as replies come
  int fill_bytes = -1;
  uint64_t seed = 1;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "zipf_get: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One reply's length in p[0..n) and what it was; 0 when incomplete. -1 on bytes that are no
// RESP reply (the stream is lost).
enum class Kind { kValue, kNil, kError };
int64_t frameReply(const char* p, size_t n, Kind* kind, int depth = 0) {
  if (n == 0) return 0;
  const char* eol = static_cast<const char*>(std::memchr(p, '\r', n));
  if (eol == nullptr || static_cast<size_t>(eol - p) + 2 > n) return 0;
  const size_t line = static_cast<size_t>(eol - p) + 2;
  if (eol[1] != '\n' || depth > 8) return -1;
  const long long len = std::strtoll(p + 1, nullptr, 10);
  *kind = Kind::kValue;
  switch (p[0]) {
    case '+':
    case ':':
    case ',':
    case '#':
    case '(':
      return static_cast<int64_t>(line);
    case '-':
      *kind = Kind::kError;
      return static_cast<int64_t>(line);
    case '_':
      *kind = Kind::kNil;
      return static_cast<int64_t>(line);
    case '$':
    case '=':
    case '!': {
      if (len < 0) {
        *kind = Kind::kNil;
        return static_cast<int64_t>(line);
      }
      const size_t total = line + static_cast<size_t>(len) + 2;
      if (total > n) return 0;
      if (p[0] == '!') *kind = Kind::kError;
      return static_cast<int64_t>(total);
    }
    case '*':
    case '~':
    case '%':
    case '>': {
      if (len < 0) {
        *kind = Kind::kNil;
        return static_cast<int64_t>(line);
      }
      size_t off = line;
      const long long items = p[0] == '%' ? 2 * len : len;
      for (long long i = 0; i < items; ++i) {
        Kind inner{};
        const int64_t m = frameReply(p + off, n - off, &inner, depth + 1);
        if (m <= 0) return m;
        off += static_cast<size_t>(m);
      }
      return static_cast<int64_t>(off);
    }
    default:
      return -1;
  }
}

int connectTo(const Options& o) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1) die("bad -h address (IPv4 only)");
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string keyName(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key:%012zu", i);
  return buf;
}

std::string command(std::initializer_list<std::string_view> args) {
  char head[32];
  std::snprintf(head, sizeof head, "*%zu\r\n", args.size());
  std::string s = head;
  for (std::string_view a : args) {
    std::snprintf(head, sizeof head, "$%zu\r\n", a.size());
    s.append(head).append(a).append("\r\n");
  }
  return s;
}

void writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write");
    data.remove_prefix(static_cast<size_t>(w));
  }
}

// --fill: SET key:0 .. key:K-1 to `bytes`-byte values on one blocking connection, 1,000 per
// pipelined batch; every reply must be +OK.
int fill(const Options& o) {
  const int fd = connectTo(o);
  const std::string value(static_cast<size_t>(o.fill_bytes), 'v');
  std::string in;
  char buf[65536];
  for (size_t first = 0; first < o.keys; first += 1000) {
    const size_t last = std::min(o.keys, first + 1000);
    std::string out;
    for (size_t i = first; i < last; ++i) out += command({"SET", keyName(i), value});
    writeAll(fd, out);
    for (size_t got = 0; got < last - first;) {
      Kind kind{};
      const int64_t m = frameReply(in.data(), in.size(), &kind);
      if (m < 0) die("unframeable reply");
      if (m == 0) {
        const ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) die("read");
        in.append(buf, static_cast<size_t>(r));
        continue;
      }
      if (in.compare(0, 5, "+OK\r\n") != 0) {
        std::fprintf(stderr, "zipf_get: SET answered %.*s\n", static_cast<int>(m), in.data());
        return 1;
      }
      in.erase(0, static_cast<size_t>(m));
      ++got;
    }
  }
  close(fd);
  std::printf("filled keys=%zu value_bytes=%d\n", o.keys, o.fill_bytes);
  return 0;
}

struct Conn {
  int fd = -1;
  std::string in;   // unparsed reply bytes
  std::string out;  // the batch not yet written
  size_t out_off = 0;
  uint32_t pending = 0;  // replies still owed for the batch in flight
  int64_t sent_ns = 0;   // when the batch in flight was sent
  bool counted = false;  // the batch in flight is past the warm-up
  bool watching_out = false;
  size_t pos = 0;  // next index into the trace
};

struct Totals {
  uint64_t requests = 0, replies = 0, nil = 0, errors = 0;
  uint64_t measured = 0;  // replies of counted batches
  int64_t last_ns = 0;    // when the last counted reply was read
  std::vector<uint32_t> lat_ns;
};

class Load {
 public:
  explicit Load(const Options& o) : o_(o), zipf_(o.keys, o.theta) {
    cmds_.reserve(o.keys);
    for (size_t i = 0; i < o.keys; ++i) cmds_.push_back(command({"GET", keyName(i)}));
    std::mt19937_64 rng(o.seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    trace_.resize(size_t{1} << 22);
    for (uint32_t& t : trace_) t = static_cast<uint32_t>(zipf_.rank(u(rng)));
    ep_ = epoll_create1(0);
    if (ep_ < 0) die("epoll_create1");
    conns_.resize(static_cast<size_t>(o.conns));
    for (size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      c.fd = connectTo(o);
      if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
      c.pos = i * (trace_.size() / conns_.size());
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
    }
  }

  int run() {
    const int64_t start = nowNs();
    measure_from_ = start + static_cast<int64_t>(o_.warmup * 1e9);
    stop_at_ = o_.requests > 0 ? INT64_MAX : measure_from_ + static_cast<int64_t>(o_.seconds * 1e9);
    next_send_ = start;
    // Waits of 1 us, not the default 50 us slack: -r paces batches a few dozen us apart.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    t_.lat_ns.reserve(o_.requests > 0 ? o_.requests : 1 << 24);
    std::vector<size_t> idle(conns_.size());
    for (size_t i = 0; i < idle.size(); ++i) idle[i] = i;
    std::vector<epoll_event> evs(256);
    const int64_t interval = o_.rate > 0 ? static_cast<int64_t>(o_.pipeline * 1e9 / o_.rate) : 0;
    size_t busy = 0;
    int64_t drain_until = 0;  // set when sending ends: replies owed after it are lost
    for (;;) {
      int64_t now = nowNs();
      const bool sending = now < stop_at_ && (o_.requests == 0 || counted_sent_ < o_.requests);
      if (!sending && busy == 0) break;
      if (!sending && drain_until == 0) drain_until = now + 10'000'000'000;
      if (!sending && now > drain_until) {
        std::fprintf(stderr, "zipf_get: replies still owed 10 s after the end\n");
        break;
      }
      while (sending && !idle.empty() && (interval == 0 || now >= next_send_)) {
        if (o_.requests > 0 && now >= measure_from_ && counted_sent_ >= o_.requests) break;
        const size_t i = idle.back();
        idle.pop_back();
        send(i, now);
        ++busy;
        if (interval > 0) next_send_ = std::max(next_send_, now - 1'000'000) + interval;
      }
      timespec wait{0, 100'000'000};
      if (sending && !idle.empty() && interval > 0) {
        const int64_t d = std::max<int64_t>(0, next_send_ - now);
        wait = {static_cast<time_t>(d / 1'000'000'000), static_cast<long>(d % 1'000'000'000)};
      }
      const int n = epoll_pwait2(ep_, evs.data(), static_cast<int>(evs.size()), &wait, nullptr);
      if (n < 0 && errno != EINTR) die("epoll_pwait2");
      now = nowNs();
      for (int e = 0; e < n; ++e) {
        const size_t i = evs[static_cast<size_t>(e)].data.u64;
        if ((evs[static_cast<size_t>(e)].events & EPOLLOUT) != 0) flush(i);
        if ((evs[static_cast<size_t>(e)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 &&
            onReadable(i, now)) {
          --busy;
          idle.push_back(i);
        }
      }
    }
    return report(start);
  }

 private:
  void send(size_t i, int64_t now) {
    Conn& c = conns_[i];
    c.out.clear();
    c.out_off = 0;
    c.counted = now >= measure_from_;
    // -n: the last counted batch is cut short so exactly n requests are measured.
    uint64_t batch = static_cast<uint64_t>(o_.pipeline);
    if (c.counted && o_.requests > 0) batch = std::min(batch, o_.requests - counted_sent_);
    for (uint64_t k = 0; k < batch; ++k) {
      c.out += cmds_[trace_[c.pos]];
      c.pos = (c.pos + 1) % trace_.size();
    }
    c.pending = static_cast<uint32_t>(batch);
    if (c.counted) counted_sent_ += batch;
    t_.requests += batch;
    c.sent_ns = now;
    flush(i);
  }

  void flush(size_t i) {
    Conn& c = conns_[i];
    while (c.out_off < c.out.size()) {
      const ssize_t w = write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      if (w <= 0) die("write");
      c.out_off += static_cast<size_t>(w);
    }
    const bool want = c.out_off < c.out.size();
    if (want != c.watching_out) {
      epoll_event ev{};
      ev.events = static_cast<uint32_t>(EPOLLIN) | (want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
      ev.data.u64 = i;
      if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0) die("epoll_ctl");
      c.watching_out = want;
    }
  }

  // Reads and frames replies; true when the batch in flight is complete.
  bool onReadable(size_t i, int64_t now) {
    Conn& c = conns_[i];
    char buf[65536];
    const ssize_t r = read(c.fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (r <= 0) {
      std::fprintf(stderr, "zipf_get: connection %zu closed with %u replies owed\n", i, c.pending);
      std::exit(2);
    }
    c.in.append(buf, static_cast<size_t>(r));
    size_t off = 0;
    for (;;) {
      Kind kind{};
      const int64_t m = frameReply(c.in.data() + off, c.in.size() - off, &kind);
      if (m == 0) break;
      if (m < 0 || c.pending == 0) {
        std::fprintf(stderr, "zipf_get: %s on connection %zu\n",
                     m < 0 ? "bytes that frame no reply" : "a reply nothing asked for", i);
        std::exit(2);
      }
      off += static_cast<size_t>(m);
      --c.pending;
      ++t_.replies;
      if (kind == Kind::kNil) ++t_.nil;
      if (kind == Kind::kError) ++t_.errors;
      if (c.counted) {
        ++t_.measured;
        t_.last_ns = now;
        t_.lat_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(now - c.sent_ns, UINT32_MAX)));
      }
    }
    c.in.erase(0, off);
    return c.pending == 0;
  }

  int report(int64_t start) {
    std::vector<uint32_t>& l = t_.lat_ns;
    auto q = [&l](double p) {
      if (l.empty()) return 0.0;
      const size_t k =
          std::min(l.size() - 1, static_cast<size_t>(p * static_cast<double>(l.size())));
      std::nth_element(l.begin(), l.begin() + static_cast<std::ptrdiff_t>(k), l.end());
      return l[k] / 1e6;
    };
    const double secs = static_cast<double>(t_.last_ns - std::max(measure_from_, start)) / 1e9;
    const double p50 = q(0.5), p99 = q(0.99), p999 = q(0.999);
    const double mx = l.empty() ? 0.0 : *std::max_element(l.begin(), l.end()) / 1e6;
    std::printf(
        "ops_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f secs=%.2f measured=%llu "
        "requests=%llu replies=%llu nil=%llu errors=%llu\n",
        secs > 0 ? static_cast<double>(t_.measured) / secs : 0.0, p50, p99, p999, mx, secs,
        static_cast<unsigned long long>(t_.measured), static_cast<unsigned long long>(t_.requests),
        static_cast<unsigned long long>(t_.replies), static_cast<unsigned long long>(t_.nil),
        static_cast<unsigned long long>(t_.errors));
    if (t_.replies != t_.requests) {
      std::fprintf(stderr, "zipf_get: %llu requests sent, %llu replies read\n",
                   static_cast<unsigned long long>(t_.requests),
                   static_cast<unsigned long long>(t_.replies));
      return 2;
    }
    return t_.errors > 0 ? 1 : 0;
  }

  const Options& o_;
  corral::bench::ZipfRanks zipf_;
  std::vector<std::string> cmds_;  // cmds_[i]: GET of key i, encoded
  std::vector<uint32_t> trace_;
  std::vector<Conn> conns_;
  int ep_ = -1;
  int64_t measure_from_ = 0, stop_at_ = 0, next_send_ = 0;
  uint64_t counted_sent_ = 0;
  Totals t_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: zipf_get -p PORT [-h 127.0.0.1] [-c conns 50] [-P pipeline 1] "
               "[-k keys 100000] [-s theta 0.99] [-d seconds 5 | -n requests] [-w warmup_s 0] "
               "[-r requests_per_s 0] [--seed 1] | --fill VALUE_BYTES\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    const char* v = argv[++i];
    if (a == "-h")
      o.host = v;
    else if (a == "-p")
      o.port = std::atoi(v);
    else if (a == "-c")
      o.conns = std::atoi(v);
    else if (a == "-P")
      o.pipeline = std::atoi(v);
    else if (a == "-k")
      o.keys = std::strtoull(v, nullptr, 10);
    else if (a == "-s")
      o.theta = std::atof(v);
    else if (a == "-d")
      o.seconds = std::atof(v);
    else if (a == "-n")
      o.requests = std::strtoull(v, nullptr, 10);
    else if (a == "-w")
      o.warmup = std::atof(v);
    else if (a == "-r")
      o.rate = std::atof(v);
    else if (a == "--seed")
      o.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--fill")
      o.fill_bytes = std::atoi(v);
    else
      usage();
  }
  if (o.port <= 0 || o.conns <= 0 || o.pipeline <= 0 || o.keys == 0 || o.keys > UINT32_MAX) usage();
  if (o.fill_bytes >= 0) return fill(o);
  Load load(o);
  return load.run();
}
