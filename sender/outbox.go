package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dropgate/dropgate/store"
)

var _ Driver = (*outboxDriver)(nil)

// outboxDriver appends one JSON object per message to
// <data_dir>/outbox/<channel>.jsonl: the default channels, for trying
// dropgate out and for tests, with the same delivery semantics as a real
// provider (a message is sent once its line is on disk).
type outboxDriver struct {
	path string

	mu   sync.Mutex
	f    *os.File
	size int64 // the file's length after the last whole line
}

func newOutboxDriver(dir, channel string) *outboxDriver {
	return &outboxDriver{path: filepath.Join(dir, channel+".jsonl")}
}

// outboxRecord is one line of an outbox file.
type outboxRecord struct {
	ID      int64             `json:"id"`
	Key     string            `json:"key"`
	JobID   int64             `json:"job_id"`
	Partner string            `json:"partner"`
	Channel string            `json:"channel"`
	To      string            `json:"to"`
	From    string            `json:"from,omitempty"`
	Subject string            `json:"subject,omitempty"`
	Body    string            `json:"body"`
	Format  string            `json:"format"`
	Ref     string            `json:"ref,omitempty"`
	Line    int               `json:"line,omitempty"`
	Vars    map[string]string `json:"vars,omitempty"`
}

// Send writes the message as one line with a single O_APPEND write, so
// concurrent writers never interleave. A write that returned survives a
// crash of the process (the kernel holds it); it is not fsynced, as the
// database itself is not at synchronous=NORMAL: an fsync per message
// capped the outbox at about a thousand messages a second.
func (d *outboxDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	b, err := json.Marshal(outboxRecord{ID: m.ID, Key: m.Key, JobID: m.JobID, Partner: m.Partner, Channel: m.Channel,
		To: m.Recipient, From: m.Sender, Subject: m.Subject, Body: m.Body, Format: m.Format, Ref: m.Ref, Line: m.Line, Vars: m.Vars})
	if err != nil {
		return "", permanent(fmt.Errorf("cannot encode message %d: %w", m.ID, err))
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o750); err != nil {
			return "", transient(fmt.Errorf("cannot create outbox folder: %w", err))
		}
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return "", transient(fmt.Errorf("cannot open outbox: %w", err))
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return "", transient(fmt.Errorf("cannot open outbox: %w", err))
		}
		d.f, d.size = f, st.Size()
	}
	if _, err := d.f.Write(b); err != nil {
		// A full disk can take part of the line: cut it off, or the retry's
		// line would follow it and neither would parse.
		if terr := d.f.Truncate(d.size); terr != nil {
			d.f.Close()
			d.f = nil // reopened, and measured, by the retry
		}
		return "", transient(fmt.Errorf("cannot write outbox %s: %w", d.path, err))
	}
	d.size += int64(len(b))
	return "outbox-" + strconv.FormatInt(m.ID, 10), nil
}

// Close closes the outbox file.
func (d *outboxDriver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
