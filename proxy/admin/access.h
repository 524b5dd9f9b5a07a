// Who may read what on the admin endpoint, and what /ready means (admin.token_env,
// admin.ready_when). Pure functions of their arguments, tested as such (access_test.cc).
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"

namespace corral::admin {

// a == b, in time that depends on the lengths only, never on where the bytes first differ: a
// token guessed byte by byte learns nothing from the clock.
bool sameSecret(std::string_view a, std::string_view b);

// Whether an Authorization header (nullptr when the request has none) carries the bearer token:
// "Bearer <token>", the scheme in any case (RFC 9110), spaces around the token ignored. An empty
// token means none is required: always true.
bool bearerAuthorized(const char* authorization, std::string_view token);

// /ready with admin.ready_when: serving. corral serves, whatever Redis's state, from when its
// listeners are bound and its workers started (the admin endpoint answers only after that) until
// a SIGTERM starts the drain; `stopping` is that signal. *body is the reply text.
bool servingReady(bool stopping, std::string* body);

}  // namespace corral::admin
