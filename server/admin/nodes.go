package admin

import (
	"net/http"
	"time"

	"github.com/dropgate/dropgate/store"
)

// handleNodes lists the live dropgate nodes on the database (several on
// PostgreSQL, the one on SQLite) with their last heartbeat and the
// messages each holds leased.
func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := s.opts.Store.Nodes(r.Context(), time.Now())
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []store.Node{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}
