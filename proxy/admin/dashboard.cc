#include "proxy/admin/dashboard.h"

#include <event2/buffer.h>
#include <event2/http.h>

#include <string>

namespace corral::admin {

void serveDashboard(evhttp_request* req) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", "text/html; charset=utf-8");
  const std::string csp(dashboardCsp());
  evhttp_add_header(headers, "Content-Security-Policy", csp.c_str());
  evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
  // The token the page may carry lives in the URL fragment, which browsers never send; no
  // Referer either, so the page's address goes nowhere.
  evhttp_add_header(headers, "Referrer-Policy", "no-referrer");
  evhttp_add_header(headers, "Cache-Control", "no-store");
  const std::string_view page = dashboardHtml();
  evbuffer* buf = evbuffer_new();
  // The page is static for the life of the process: no copy.
  evbuffer_add_reference(buf, page.data(), page.size(), nullptr, nullptr);
  evhttp_send_reply(req, 200, "OK", buf);
  evbuffer_free(buf);
}

}  // namespace corral::admin
