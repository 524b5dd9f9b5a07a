// GET /dashboard: one self-contained HTML page (inline CSS and JS, nothing loaded from
// elsewhere) that polls /metrics and /policies of the same admin endpoint and shows them live.
//
//   dashboard.html --embed_dashboard.cmake (build)--> dashboard_page.cc: dashboardHtml(),
//   dashboardCsp(); GET /dashboard (admin.cc) --> the bytes, text/html, addDashboardHeaders()
//
// The page is data for the browser: corral only serves it. What it shows and how it reads the
// metrics is written in the page itself.
#pragma once

#include <string_view>

struct evkeyvalq;

namespace corral::admin {

// The page's bytes, exactly as proxy/admin/dashboard.html holds them (generated at build time).
std::string_view dashboardHtml();
// The Content-Security-Policy served with it: nothing from other origins, fetches only to this
// endpoint, and only the page's own inline script and style (by their SHA-256).
std::string_view dashboardCsp();

// The headers served with the page (admin.cc sends it, for GET and HEAD alike): that
// Content-Security-Policy, no sniffing, no referrer, no caching.
void addDashboardHeaders(evkeyvalq* headers);

}  // namespace corral::admin
