package admin

import (
	"net/http"

	"github.com/dropgate/dropgate/unsubscribe"
)

// route is one entry of the API: its method and path pattern, and its
// handler. The OpenAPI document describes exactly the /api/v1 routes of
// this table (TestOpenAPIDescribesEveryRoute).
type route struct {
	method, path string
	h            http.Handler
}

// apiRoutes is the whole /api/v1 in one table.
func (s *Server) apiRoutes() []route {
	action := func(name string) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error { return s.handleJobAction(w, r, name) }
	}
	return []route{
		{"GET", "/api/v1/openapi.json", s.wrap(s.handleOpenAPI)},
		{"GET", "/api/v1/jobs", s.authed(s.handleListJobs)},
		{"GET", "/api/v1/jobs/{id}", s.authed(s.handleGetJob)},
		{"GET", "/api/v1/jobs/{id}/messages", s.authed(s.handleJobMessages)},
		{"POST", "/api/v1/jobs/{id}/pause", s.authed(action("pause"))},
		{"POST", "/api/v1/jobs/{id}/resume", s.authed(action("resume"))},
		{"POST", "/api/v1/jobs/{id}/cancel", s.authed(action("cancel"))},
		{"POST", "/api/v1/jobs/{id}/retry", s.authed(action("retry"))},
		{"POST", "/api/v1/messages", s.authed(s.handleSend)},
		{"GET", "/api/v1/messages/{id}", s.authed(s.handleGetMessage)},
		{"GET", "/api/v1/files", s.authed(s.handleListFiles)},
		{"GET", "/api/v1/files/{id}", s.authed(s.handleGetFile)},
		{"GET", "/api/v1/templates", s.authed(s.handleListTemplates)},
		{"GET", "/api/v1/templates/{name}", s.authed(s.handleTemplateVersions)},
		{"GET", "/api/v1/templates/{name}/versions/{version}", s.authed(s.handleTemplateVersion)},
		{"PUT", "/api/v1/templates/{name}", s.authed(s.handlePutTemplate)},
		{"GET", "/api/v1/suppressions", s.authed(s.handleListSuppressions)},
		{"POST", "/api/v1/suppressions", s.authed(s.handleAddSuppressions)},
		{"DELETE", "/api/v1/suppressions", s.authed(s.handleDeleteSuppressionsOf)},
		{"DELETE", "/api/v1/suppressions/{id}", s.authed(s.handleDeleteSuppression)},
		{"POST", "/api/v1/events", s.authed(s.handleEvents)},
		{"GET", "/api/v1/workflows", s.authed(s.handleListWorkflows)},
		{"GET", "/api/v1/workflows/{name}/runs", s.authed(s.handleListRuns)},
		{"DELETE", "/api/v1/workflows/{name}/runs/{id}", s.authed(s.handleCancelRun)},
		{"POST", "/api/v1/workflows/{name}/cancel", s.authed(s.handleCancelRunsByKey)},
		{"GET", "/api/v1/runs/{id}", s.authed(s.handleGetRun)},
		{"POST", "/api/v1/lists/{list}/sends", s.authed(s.handleListSend)},
		{"GET", "/api/v1/lists", s.authed(s.handleListLists)},
		{"POST", "/api/v1/lists", s.authed(s.handleCreateList)},
		{"GET", "/api/v1/lists/{list}", s.authed(s.handleGetList)},
		{"GET", "/api/v1/lists/{list}/contacts", s.authed(s.handleListMembers)},
		{"POST", "/api/v1/lists/{list}/contacts", s.authed(s.handlePutContacts)},
		{"DELETE", "/api/v1/lists/{list}/contacts", s.authed(s.handleRemoveMember)},
		{"GET", "/api/v1/contacts", s.authed(s.handleGetContact)},
		{"GET", "/api/v1/bans", s.adminOnly(s.handleBans)},
		{"GET", "/api/v1/nodes", s.adminOnly(s.handleNodes)},
		// The channel's own secret, not an API token (inbound.go).
		{"POST", "/api/v1/inbound/{channel}", s.wrap(s.handleInbound)},
	}
}

// routes builds the handler: the API table, probes, metrics and the
// status console.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.wrap(s.handleHealthz))
	mux.Handle("GET /readyz", s.wrap(s.handleReadyz))
	// The status console (server/admin/console).
	mux.Handle("GET /{$}", s.signedIn(s.handleOverview))
	mux.Handle("GET /login", s.wrapPage(s.handleLoginForm))
	mux.Handle("POST /login", s.wrapPage(s.handleLogin))
	mux.Handle("POST /logout", s.signedIn(s.handleLogout))
	mux.Handle("GET /console/style.css", s.wrap(s.handleStyle))
	mux.Handle("GET /jobs", s.signedIn(s.handleJobsPage))
	mux.Handle("GET /jobs/{id}", s.signedIn(s.handleJobPage))
	mux.Handle("GET /jobs/{id}/result.csv", s.signedIn(s.handleJobResult))
	mux.Handle("POST /jobs/{id}/{action}", s.signedIn(s.handleJobActionForm))
	mux.Handle("GET /files", s.signedIn(s.handleFilesPage))
	mux.Handle("GET /files/{id}", s.signedIn(s.handleFilePage))
	mux.Handle("GET /templates", s.signedIn(s.handleTemplatesPage))
	mux.Handle("GET /templates/{partner}/{name}", s.signedIn(s.handleTemplatePage))
	// Metrics carry only counts, no partner data: scrapers need no token,
	// and the admin listener is on loopback unless configured otherwise.
	mux.Handle("GET /metrics", s.metricsHandler())
	// One-click unsubscribe (unsubscribe.go): public, the token is the key.
	mux.Handle("GET "+unsubscribe.PathPrefix+"{token}", s.wrap(s.handleUnsubscribePage))
	mux.Handle("POST "+unsubscribe.PathPrefix+"{token}", s.wrap(s.handleUnsubscribe))
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.method+" "+rt.path, rt.h)
	}
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
