#include "proxy/admin/dashboard.h"

#include <event2/http.h>

#include <string>

namespace corral::admin {

void addDashboardHeaders(evkeyvalq* headers) {
  const std::string csp(dashboardCsp());
  evhttp_add_header(headers, "Content-Security-Policy", csp.c_str());
  evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
  // The token the page may carry lives in the URL fragment, which browsers never send; no
  // Referer either, so the page's address goes nowhere.
  evhttp_add_header(headers, "Referrer-Policy", "no-referrer");
  evhttp_add_header(headers, "Cache-Control", "no-store");
}

}  // namespace corral::admin
