package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/internal/freelist"
	"github.com/dropgate/dropgate/store"
)

// maxEventsPerRequest bounds one POST /api/v1/events; more belong in an
// events/ file.
const maxEventsPerRequest = 10_000

// Workflows is the workflow engine as the API uses it (workflow.Engine).
type Workflows interface {
	// Accept stores events with the runs they start and cancel, before it
	// returns.
	Accept(ctx context.Context, events []store.Event) ([]store.EventResult, error)
	// Has reports whether a partner has a workflow of that name.
	Has(partner, name string) bool
	// Workflows lists a partner's workflows ("" for all).
	Workflows(partner string) []config.Workflow
}

// eventEntry is one event in a request body.
type eventEntry struct {
	ID         string   `json:"id"`
	Event      string   `json:"event"`
	Email      string   `json:"email"`
	Phone      string   `json:"phone"`
	Ref        string   `json:"ref"`
	Key        string   `json:"key"`
	Data       sendVars `json:"data"` // read as a send's vars are (sendvars.go)
	OccurredAt string   `json:"occurred_at"`
}

// eventsRequest is the body of POST /api/v1/events: one event inline, or
// many in events.
type eventsRequest struct {
	Partner string `json:"partner"`
	eventEntry
	Events []eventEntry `json:"events"`
}

// eventAnswer is what became of one event.
type eventAnswer struct {
	Index     int     `json:"index"`
	ID        int64   `json:"id,omitempty"`
	Duplicate bool    `json:"duplicate,omitempty"`
	Started   []int64 `json:"runs_started,omitempty"`
	Cancelled int     `json:"runs_cancelled,omitempty"`
}

// entryBufs, inputBufs and answerBufs keep the per-event lists of a few
// requests of up to 2,048 events: made per request they were a sixth of
// an event's garbage (internal/freelist says why that matters).
var (
	entryBufs  = freelist.New[eventEntry](8, 2048)
	inputBufs  = freelist.New[ingest.EventInput](8, 2048)
	answerBufs = freelist.New[eventAnswer](8, 2048)
)

// handleEvents accepts workflow events: checked all or none (422 with
// every problem by index), stored with the runs they start and cancel
// before the answer. An event's id, or the request's Idempotency-Key (with
// the event's index in a batch), makes a repeat a no-op.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Workflows == nil || s.opts.CheckEvents == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not take events"}
	}
	var req eventsRequest
	if err := s.decodeEvents(w, r, &req); err != nil { // events_decode.go
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return errBadRequest(fmt.Sprintf("Idempotency-Key is longer than %d characters", maxIdempotencyKey))
	}
	entries := req.Events
	single := req.Event != "" || req.Email != "" || req.Phone != "" || req.Ref != "" || req.Data.m != nil || req.ID != ""
	if single {
		if len(entries) > 0 {
			return errBadRequest("give one event inline (event, email/phone/ref, key, data) or many in events; not both")
		}
		entries = []eventEntry{req.eventEntry}
	}
	if len(entries) == 0 {
		return errBadRequest(`give an event ("event": "cart_abandoned", "email": ...) or a list in "events"`)
	}
	if len(entries) > maxEventsPerRequest {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request",
			Message: fmt.Sprintf("at most %d events per request; drop a file in events/ for more", maxEventsPerRequest)}
	}
	inputs := inputBufs.Get(len(entries))
	defer inputBufs.Put(inputs)
	var problems []ingest.Problem
	for i, e := range entries {
		data, bad := e.Data.m, e.Data.bad
		for _, name := range bad {
			problems = append(problems, ingest.Problem{Field: fmt.Sprintf("events[%d].data.%s", i, name), Message: "a data value must be a string, number, boolean or null"})
		}
		id := e.ID
		if id == "" && key != "" {
			id = key
			if !single {
				id = key + "#" + strconv.Itoa(i)
			}
		}
		inputs[i] = ingest.EventInput{ID: id, Event: e.Event, Email: e.Email, Phone: e.Phone, Ref: e.Ref, Key: e.Key, OccurredAt: e.OccurredAt, Data: data}
	}
	if !single {
		entryBufs.Put(entries) // read into inputs
		req.Events, entries = nil, nil
	}
	events, more, err := s.opts.CheckEvents(partner, inputs)
	if errors.Is(err, ingest.ErrUnknownPartner) {
		return errUnknownPartner(partner, err.Error())
	}
	if err != nil {
		return err
	}
	problems = append(problems, more...)
	if len(problems) > 0 {
		return errProblems("no event was accepted", problems[0], problems)
	}
	if err := s.checkStorage(w, nil); err != nil {
		return err
	}
	res, err := s.opts.Workflows.Accept(r.Context(), events)
	if err != nil {
		return s.checkStorage(w, err)
	}
	out := answerBufs.Get(len(res))
	defer answerBufs.Put(out)
	accepted, started := 0, 0
	for i, x := range res {
		out[i] = eventAnswer{Index: i, ID: x.ID, Duplicate: x.Duplicate, Started: x.Started, Cancelled: x.Cancelled}
		if !x.Duplicate {
			accepted++
		}
		started += len(x.Started)
	}
	status := http.StatusAccepted
	if accepted == 0 {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	s.logger.Info("events accepted", "partner", partner, "events", accepted, "duplicates", len(res)-accepted, "runs_started", started)
	return writeEventsAnswer(w, status, accepted, len(res)-accepted, out)
}

// writeEventsAnswer writes {"accepted", "duplicates", "events"} as
// writeJSON would, less the indentation: encoding/json's reflection on
// 1,000 answers was a thirtieth of a batch's CPU.
func writeEventsAnswer(w http.ResponseWriter, status, accepted, duplicates int, out []eventAnswer) error {
	b := make([]byte, 0, 64+len(out)*40)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"duplicates":`...)
	b = strconv.AppendInt(b, int64(duplicates), 10)
	b = append(b, `,"events":[`...)
	for i, a := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(a.Index), 10)
		if a.ID != 0 {
			b = append(b, `,"id":`...)
			b = strconv.AppendInt(b, a.ID, 10)
		}
		if a.Duplicate {
			b = append(b, `,"duplicate":true`...)
		}
		if len(a.Started) > 0 {
			b = append(b, `,"runs_started":[`...)
			for j, id := range a.Started {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, id, 10)
			}
			b = append(b, ']')
		}
		if a.Cancelled != 0 {
			b = append(b, `,"runs_cancelled":`...)
			b = strconv.AppendInt(b, int64(a.Cancelled), 10)
		}
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	return writeJSONBytes(w, status, b)
}
