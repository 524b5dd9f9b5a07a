#include "doctor/dial.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace corral::doctor {

int leftMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool waitFor(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  int n = 0;
  do {
    n = ::poll(&p, 1, leftMs(deadline));
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

int dial(const config::ListenAddress& a, Clock::time_point deadline, std::string* err) {
  auto attempt = [&](int family, const sockaddr* sa, socklen_t len) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, sa, len) == 0) return fd;
    if (errno == EINPROGRESS && waitFor(fd, POLLOUT, deadline)) {
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (soerr == 0) return fd;
      errno = soerr;
    } else if (errno == EINPROGRESS) {
      errno = ETIMEDOUT;
    }
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  };
  if (a.kind == config::ListenAddress::Kind::kUnix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, a.path.c_str(), sizeof un.sun_path - 1);
    int fd = attempt(AF_UNIX, reinterpret_cast<const sockaddr*>(&un), sizeof un);
    if (fd < 0) *err = "cannot connect to unix:" + a.path + ": " + std::strerror(errno);
    return fd;
  }
  // A wildcard listener is reached on loopback.
  std::string host = a.host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *err = "cannot resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = attempt(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
  }
  if (fd < 0) *err = "cannot connect to " + host + ":" + port + ": " + std::strerror(errno);
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace corral::doctor
