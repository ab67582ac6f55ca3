package admin

import "net/http"

// routes is the whole API in one table.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.wrap(s.handleHealthz))
	mux.Handle("GET /readyz", s.wrap(s.handleReadyz))
	mux.Handle("GET /{$}", s.wrap(s.handleStatusPage))
	// Metrics carry only counts, no partner data: scrapers need no token,
	// and the admin listener is on loopback unless configured otherwise.
	mux.Handle("GET /metrics", s.metricsHandler())

	mux.Handle("GET /api/v1/jobs", s.authed(s.handleListJobs))
	mux.Handle("GET /api/v1/jobs/{id}", s.authed(s.handleGetJob))
	mux.Handle("GET /api/v1/jobs/{id}/messages", s.authed(s.handleJobMessages))
	mux.Handle("POST /api/v1/jobs/{id}/{action}", s.authed(s.handleJobAction))
	mux.Handle("POST /api/v1/messages", s.authed(s.handleSend))
	mux.Handle("GET /api/v1/messages/{id}", s.authed(s.handleGetMessage))
	mux.Handle("GET /api/v1/files", s.authed(s.handleListFiles))
	mux.Handle("GET /api/v1/files/{id}", s.authed(s.handleGetFile))
	mux.Handle("GET /api/v1/templates", s.authed(s.handleListTemplates))
	mux.Handle("GET /api/v1/templates/{name}", s.authed(s.handleTemplateVersions))
	mux.Handle("GET /api/v1/templates/{name}/versions/{version}", s.authed(s.handleTemplateVersion))
	mux.Handle("PUT /api/v1/templates/{name}", s.authed(s.handlePutTemplate))
	mux.Handle("GET /api/v1/bans", s.adminOnly(s.handleBans))

	mux.Handle("/api/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path}
	}))
	return securityHeaders(mux)
}

// securityHeaders sets headers that cost nothing and close common holes on
// the status page.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
