package admin

import "net/http"

// handleGetContact answers the contact of ?email=, ?phone= or ?ref= with
// its lists and its status in each.
func (s *Server) handleGetContact(w http.ResponseWriter, r *http.Request) error {
	partner, err := listPartner(r)
	if err != nil {
		return err
	}
	c, err := s.contactOf(r, partner)
	if err != nil {
		return err
	}
	lists, err := s.opts.Store.ContactLists(r.Context(), c.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"contact": c, "lists": lists})
}
