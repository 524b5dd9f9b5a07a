// GET /dashboard: one self-contained HTML page (inline CSS and JS, nothing loaded from
// elsewhere) that polls /metrics and /policies of the same admin endpoint and shows them live.
//
//   dashboard.html --embed_dashboard.cmake (build)--> dashboard_page.cc: dashboardHtml(),
//   dashboardCsp() GET /dashboard --serveDashboard--> the bytes, text/html, with that
//   Content-Security-Policy
//
// The page is data for the browser: corral only serves it. What it shows and how it reads the
// metrics is written in the page itself.
#pragma once

#include <string_view>

struct evhttp_request;

namespace corral::admin {

// The page's bytes, exactly as proxy/admin/dashboard.html holds them (generated at build time).
std::string_view dashboardHtml();
// The Content-Security-Policy served with it: nothing from other origins, fetches only to this
// endpoint, and only the page's own inline script and style (by their SHA-256).
std::string_view dashboardCsp();

// Answers req (a GET) with the page.
void serveDashboard(evhttp_request* req);

}  // namespace corral::admin
