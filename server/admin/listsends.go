package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// listSendRequest is the body of POST /api/v1/lists/{list}/sends.
type listSendRequest struct {
	Partner  string `json:"partner"`
	Template string `json:"template"`
	Segment  string `json:"segment"`
	SendAt   string `json:"send_at"`
	DryRun   bool   `json:"dry_run"`
}

// listSendResponse is its answer.
type listSendResponse struct {
	List string `json:"list"`
	ingest.ListSendResult
}

// handleListSend sends a template to the subscribed members of a list that
// a segment chooses. The whole send is made before the answer (read,
// evaluated, rendered and written through the bulk job writer, the job
// invisible to the sender until it is whole), so the answer has the
// counts and the job; a dry run only counts. A client that goes away
// before the answer cancels the send: nothing is queued.
func (s *Server) handleListSend(w http.ResponseWriter, r *http.Request) error {
	if s.opts.SendToList == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not send to lists"}
	}
	var req listSendRequest
	if err := s.decodeJSON(w, r, &req, "list send"); err != nil {
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	list := r.PathValue("list")
	if !req.DryRun {
		if err := s.checkStorage(w, nil); err != nil { // storage.go: 507 while space is low
			return err
		}
	}
	res, problems, err := s.opts.SendToList(r.Context(), partner, ingest.ListSendRequest{List: list, Template: req.Template,
		Segment: req.Segment, SendAt: req.SendAt, DryRun: req.DryRun})
	switch {
	case errors.Is(err, ingest.ErrUnknownPartner):
		return errUnknownPartner(partner, err.Error())
	case errors.Is(err, store.ErrNotFound):
		// Another partner's list is not found either.
		return errNotFound(fmt.Sprintf("list %q", list))
	case err != nil:
		return s.checkStorage(w, err)
	case len(problems) > 0:
		return errProblems("nothing was queued", problems[0].Problem, problems)
	}
	if req.DryRun {
		return writeJSON(w, http.StatusOK, listSendResponse{List: list, ListSendResult: res})
	}
	if s.opts.Nudge != nil {
		s.opts.Nudge()
	}
	return writeJSON(w, http.StatusAccepted, listSendResponse{List: list, ListSendResult: res})
}

// jobWithListSend is a job of source list with what it was made from.
type jobWithListSend struct {
	store.Job
	ListSend *store.ListSend `json:"list_send,omitempty"`
}

// maxListSendErrors bounds the rejected contacts shown with a job.
const maxListSendErrors = 10000

// withListSend adds a list job's send (counts, rejected contacts) to it,
// for GET /api/v1/jobs/{id}.
func (s *Server) withListSend(ctx context.Context, j store.Job) (any, error) {
	if j.Source != store.SourceList {
		return j, nil
	}
	ls, err := s.opts.Store.ListSendOf(ctx, j.ID, maxListSendErrors)
	if errors.Is(err, store.ErrNotFound) {
		return j, nil
	}
	if err != nil {
		return nil, err
	}
	return jobWithListSend{Job: j, ListSend: &ls}, nil
}
