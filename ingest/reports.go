package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Report name suffixes, after the uploaded file's base name.
const (
	errorsSuffix         = ".errors.csv"
	resultSuffix         = ".result.csv"
	templateErrorsSuffix = ".errors.txt"
)

// reportPath is reports/<base of the uploaded file><suffix> in p's home.
func reportPath(p *partner, rel, suffix string) string {
	return filepath.Join(p.home, config.ReportsDir, filepath.Base(rel)+suffix)
}

// writeAtomic writes a report through a temporary file renamed into place,
// so a partner downloading reports never reads half of one.
func writeAtomic(path string, write func(w *bufio.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot create report: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	w := bufio.NewWriterSize(tmp, 64<<10)
	if err := write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write report: %w", err)
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot publish report: %w", err)
	}
	return nil
}

// removeReport deletes a stale report; a missing one is fine.
func removeReport(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove stale report: %w", err)
	}
	return nil
}

// writeErrorsReport writes <file>.errors.csv: line,column,value,error.
func writeErrorsReport(path string, errs []store.FileError) error {
	return writeAtomic(path, func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"line", "column", "value", "error"})
		for _, e := range errs {
			cw.Write([]string{strconv.Itoa(e.Line), e.Column, e.Value, e.Error})
		}
		cw.Flush()
		return cw.Error()
	})
}

// writeResultReport writes <file>.result.csv for a finished job, one row per
// message, streamed from the store.
func (in *Ingester) writeResultReport(ctx context.Context, path string, jobID int64) error {
	return writeAtomic(path, func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"line", "ref", "recipient", "status", "provider_id", "error", "sent_at"})
		row := make([]string, 7)
		err := in.st.JobMessages(ctx, jobID, "", 0, 0, func(m store.Message) error {
			sent := ""
			if !m.SentAt.IsZero() {
				sent = m.SentAt.UTC().Format(time.RFC3339)
			}
			row[0], row[1], row[2], row[3], row[4], row[5], row[6] = strconv.Itoa(m.Line), m.Ref, m.Recipient, m.Status, m.ProviderID, m.LastError, sent
			return cw.Write(row)
		})
		if err != nil {
			return fmt.Errorf("cannot read messages of job %d: %w", jobID, err)
		}
		cw.Flush()
		return cw.Error()
	})
}
