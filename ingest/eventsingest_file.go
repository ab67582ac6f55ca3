package ingest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// isEventsItem reports whether the file is in the partner's events/.
func isEventsItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.EventsDir+"/")
}

// ingestEventsFile reads one file of events/ and accepts its events, all
// or nothing, like every applied file (ingestAppliedFile): a bad row (or,
// under on_bad_rows = "skip_rows", no good row) rejects the file with
// reports/<file>.errors.csv naming line and column; a good file's events
// are stored, with the runs they start, in the transaction that marks the
// file read, and reports/<file>.result.csv says how many were accepted,
// repeated (an id already accepted) and how many runs started.
func (in *Ingester) ingestEventsFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	ef := &eventsFile{fileJob: fileJob{in: in, p: p, rel: rel}, checker: eventChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region), required: in.required}}
	return in.ingestAppliedFile(ctx, p, rel, how, mk, ef)
}

// eventsFile is the reading of one events/ file. It borrows fileJob's
// row-error bookkeeping.
type eventsFile struct {
	fileJob
	checker eventChecker
	events  []store.Event
}

func (ef *eventsFile) job() *fileJob   { return &ef.fileJob }
func (ef *eventsFile) abort()          {}
func (ef *eventsFile) nothing() string { return "no event was accepted" }

func (ef *eventsFile) applicable() bool {
	return ef.bad == 0 || ef.p.skipsBadRows() && len(ef.events) > 0
}

// apply stores the events, with the runs they start and cancel, in the
// transaction that marks the file read.
func (ef *eventsFile) apply(ctx context.Context, fileID int64) ([]string, []string, error) {
	res, err := ef.in.events(ctx, fileID, ef.rows, ef.events)
	if err != nil {
		return nil, nil, err
	}
	accepted, repeated, started, cancelled := 0, 0, 0, 0
	for _, r := range res {
		if r.Duplicate {
			repeated++
		} else {
			accepted++
		}
		started += len(r.Started)
		cancelled += r.Cancelled
	}
	return []string{"rows", "accepted", "repeated", "runs_started", "runs_cancelled", "skipped_rows"},
		[]string{strconv.Itoa(ef.rows), strconv.Itoa(accepted), strconv.Itoa(repeated), strconv.Itoa(started),
			strconv.Itoa(cancelled), strconv.Itoa(ef.bad)}, nil
}

// read reads every CSV of the file (.csv, .txt, .gz, or each CSV in a .zip).
func (ef *eventsFile) read(ctx context.Context, f *os.File) error {
	if ef.in.events == nil {
		return &fileLevelError{Msg: "this server does not take events; ask your administrator to configure a workflow"}
	}
	return ef.readDataFile(ctx, f, "events/", "the event CSVs", ef.readCSV)
}

// readCSV reads one CSV stream of events: the columns event, email, phone,
// ref, key, occurred_at and id; every other column is a data field.
func (ef *eventsFile) readCSV(ctx context.Context, r io.Reader) error {
	cr, err := ef.openDataCSV(r, "the file is empty; upload a CSV with a header line (event, email/phone/ref, optional key, occurred_at, id and data columns) and at least one row")
	if err != nil {
		return err
	}
	pos := map[string]int{}
	for i, n := range cr.names {
		if _, dup := pos[n]; dup {
			return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; keep one", n)}
		}
		pos[n] = i
	}
	if _, ok := pos[colEvent]; !ok {
		return &fileLevelError{Line: 1, Msg: "the header has no event column; name the column that says what happened (e.g. cart_abandoned)"}
	}
	_, hasEmail := pos[colEmail]
	_, hasPhone := pos[colPhone]
	_, hasRef := pos[colRef]
	if !hasEmail && !hasPhone && !hasRef {
		return &fileLevelError{Line: 1, Msg: "the header has no email, phone or ref column; name the column that says who did it"}
	}
	cell := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return fields[i]
		}
		return ""
	}
	rowsBefore := ef.rows
	err = ef.eachRecord(ctx, cr, func(fields []string, line int) error {
		var data map[string]string
		for i, name := range cr.names {
			switch name {
			case colEvent, colEmail, colPhone, colRef, colKey, colOccurredAt, colEventID:
				continue
			}
			if data == nil {
				data = make(map[string]string, len(cr.names))
			}
			data[name] = fields[i]
		}
		in := EventInput{ID: cell(fields, colEventID), Event: cell(fields, colEvent), Email: cell(fields, colEmail),
			Phone: cell(fields, colPhone), Ref: cell(fields, colRef), Key: cell(fields, colKey), OccurredAt: cell(fields, colOccurredAt), Data: data}
		e, ok := ef.checker.check(in, store.EventFromFile, func(column, value, msg string) { ef.rowError(line, column, value, msg) })
		if ok {
			ef.events = append(ef.events, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ef.rows == rowsBefore {
		return &fileLevelError{Msg: "the file has a header line but no rows, so no event was accepted"}
	}
	return nil
}
