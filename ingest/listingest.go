package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// List files (lists/<list>/*.csv): contacts upserted into list <list>,
// read like recipient files (applyfile.go, rowiter.go) and applied whole
// in one transaction. Columns email, phone and ref are the contact's keys
// (at least one per row), status its status in the list; every other
// column is an attribute, an empty cell leaving the stored value. A
// column's type is decided per file, from all its values: a first pass
// reads the file for the types, a second checks every row and streams it
// into the store's ListLoad, which writes while the next rows are read.

// listOf returns the list a file of lists/<list>/ goes to.
func listOf(rel string) (string, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[0] != config.ListsDir || config.IsTempName(parts[1]) {
		return "", false
	}
	return parts[1], true
}

// ingestListFile reads one file of lists/<list>/ into its list.
func (in *Ingester) ingestListFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	name, _ := listOf(rel)
	lf := &listFile{fileJob: fileJob{in: in, p: p, rel: rel, phones: newPhoneNormalizer(p.cfg.Region)}, list: name,
		replace: p.cfg.ListMode(name) == config.ListModeReplace}
	return in.ingestAppliedFile(ctx, p, rel, how, mk, lf)
}

// listFile is the reading of one list file.
type listFile struct {
	fileJob
	list    string
	replace bool
	// stored are the partner's attribute types before the file; fits the
	// bits of the types each attribute column's values fit (first pass);
	// types what they are stored as.
	stored map[string]string
	fits   map[string]int
	types  map[string]string
	load   *store.ListLoad
	good   int
	counts store.ListCounts
	// Per row, reused.
	buf    []byte
	values []any
}

func (lf *listFile) job() *fileJob { return &lf.fileJob }

func (lf *listFile) nothing() string { return "nothing was changed in list " + strconv.Quote(lf.list) }

// applicable: a replace file is all or nothing whatever on_bad_rows says,
// since a skipped row would take its contact off the list.
func (lf *listFile) applicable() bool {
	return lf.load != nil && (lf.bad == 0 || !lf.replace && lf.p.skipsBadRows() && lf.good > 0)
}

func (lf *listFile) abort() {
	if lf.load != nil {
		lf.load.Abort()
	}
}

func (lf *listFile) apply(ctx context.Context, fileID int64) ([]string, []string, error) {
	counts, err := lf.load.Commit(fileID, lf.rows)
	if err != nil {
		return nil, nil, err
	}
	return []string{"rows", "inserted", "updated", "unchanged", "rejected", "removed"},
		[]string{strconv.Itoa(lf.rows), strconv.Itoa(counts.Inserted), strconv.Itoa(counts.Updated), strconv.Itoa(counts.Unchanged),
			strconv.Itoa(lf.bad), strconv.Itoa(counts.Removed)}, nil
}

const listHolds = "the contact CSVs"

// read types the columns (first pass), then checks every row and hands
// the good ones to the load (second pass).
func (lf *listFile) read(ctx context.Context, f *os.File) error {
	if !config.ValidListName(lf.list) {
		return &fileLevelError{Msg: fmt.Sprintf("%q is not a list name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit; move the file into lists/<name>/", lf.list)}
	}
	folder := config.ListsDir + "/" + lf.list + "/"
	var err error
	if lf.stored, err = lf.in.st.ContactFields(ctx, lf.p.cfg.Name); err != nil {
		return err
	}
	lf.fits = map[string]int{}
	if err := lf.readDataFile(ctx, f, folder, listHolds, lf.typeCSV); err != nil {
		return err
	}
	lf.types = decideTypes(lf.fits, lf.stored)
	// The second pass reports every row problem, the first one's included.
	firstPassRows := lf.rows
	lf.rows, lf.bad, lf.lastBad, lf.errs, lf.unlisted = 0, 0, 0, nil, 0
	if lf.load, err = lf.in.st.BeginListLoad(ctx, lf.p.cfg.Name, lf.list, store.ListLoadOptions{Replace: lf.replace, Fields: lf.types, Rows: firstPassRows}, true); err != nil {
		var fe *store.FieldTypeError
		if errors.As(err, &fe) {
			// The stored type changed since the first pass (an API request).
			return &fileLevelError{Msg: fmt.Sprintf("%v; nothing was changed, upload the file again", err)}
		}
		return err
	}
	if err := lf.readDataFile(ctx, f, folder, listHolds, lf.loadCSV); err != nil {
		return err
	}
	_, problems, err := lf.load.Finish()
	if err != nil {
		return err
	}
	for _, pr := range problems {
		lf.rowError(pr.Line, pr.Column, pr.Value, pr.Message)
		lf.good--
	}
	if lf.rows == 0 {
		return &fileLevelError{Msg: "the file has a header line but no rows; " + lf.nothing()}
	}
	return nil
}

// contactCols is the header of one list CSV, resolved.
type contactCols struct {
	email, phone, ref, status int   // -1 when absent
	attrs                     []int // attribute columns, by name
}

func (lf *listFile) columns(cr *csvReader) (*contactCols, error) {
	c := &contactCols{email: -1, phone: -1, ref: -1, status: -1}
	seen := map[string]bool{}
	for i, n := range cr.names {
		if n == "" {
			continue
		}
		if seen[n] {
			return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; give each column its own name", n)}
		}
		seen[n] = true
		switch n {
		case colEmail:
			c.email = i
		case colPhone:
			c.phone = i
		case colRef:
			c.ref = i
		case colStatus:
			c.status = i
		default:
			c.attrs = append(c.attrs, i)
		}
	}
	if c.email < 0 && c.phone < 0 && c.ref < 0 {
		if v := dataLike(cr.names); v != "" {
			return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the first line looks like data, not a header (it holds '%s'); add a first line that names the columns, like email;first_name", v)}
		}
		return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header has no email, phone or ref column, so no row says which contact it is; name one of those columns (the header has: %s)", strings.Join(cr.names, ", "))}
	}
	sort.Slice(c.attrs, func(a, b int) bool { return cr.names[c.attrs[a]] < cr.names[c.attrs[b]] })
	return c, nil
}

// typeCSV is the first pass over one CSV: what each attribute column's
// values fit.
func (lf *listFile) typeCSV(ctx context.Context, r io.Reader) error {
	cr, err := lf.openDataCSV(r, lf.emptyMessage())
	if err != nil {
		return err
	}
	cols, err := lf.columns(cr)
	if err != nil {
		return err
	}
	known := true
	for _, col := range cols.attrs {
		if _, ok := lf.stored[cr.names[col]]; !ok {
			known = false
		}
	}
	if known {
		// Every column has its type already (a file of a shape sent
		// before): nothing to learn from the values.
		return nil
	}
	fits := make([]int, len(cols.attrs))
	for i, col := range cols.attrs {
		fits[i] = fitsAny
		if f, ok := lf.fits[cr.names[col]]; ok {
			fits[i] = f
		}
	}
	seen := make([]bool, len(cols.attrs))
	err = lf.eachRecord(ctx, cr, func(fields []string, line int) error {
		for i, col := range cols.attrs {
			if fits[i] == 0 && seen[i] {
				continue // text already: nothing narrows it further
			}
			if v := strings.TrimSpace(fields[col]); v != "" {
				fits[i] &= valueFits(v)
				seen[i] = true
			}
		}
		return nil
	})
	for i, col := range cols.attrs {
		if _, ok := lf.fits[cr.names[col]]; seen[i] || ok {
			lf.fits[cr.names[col]] = fits[i]
		}
	}
	return err
}

func (lf *listFile) emptyMessage() string {
	return "the file is empty; upload a CSV with a header line (email, phone and/or ref, optional status, then attribute columns) and at least one row"
}

// loadCSV is the second pass over one CSV: every row checked, the good
// ones handed to the load.
func (lf *listFile) loadCSV(ctx context.Context, r io.Reader) error {
	cr, err := lf.openDataCSV(r, lf.emptyMessage())
	if err != nil {
		return err
	}
	cols, err := lf.columns(cr)
	if err != nil {
		return err
	}
	names := make([]string, len(cols.attrs))
	types := make([]string, len(cols.attrs))
	for i, col := range cols.attrs {
		names[i] = cr.names[col]
		if types[i] = lf.types[names[i]]; types[i] == "" {
			types[i] = lf.stored[names[i]]
		}
	}
	if cap(lf.values) < len(names) {
		lf.values = make([]any, len(names))
	}
	values := lf.values[:len(names)]
	get := func(fields []string, i int) string {
		if i < 0 {
			return ""
		}
		return fields[i]
	}
	return lf.eachRecord(ctx, cr, func(fields []string, line int) error {
		bad := func(column, value, msg string) { lf.rowError(line, column, value, msg) }
		row, ok := contactKeys(lf.phones, get(fields, cols.email), get(fields, cols.phone), get(fields, cols.ref), bad)
		if st, valid := contactStatus(get(fields, cols.status)); valid {
			row.Status = st
		} else {
			bad(cr.header[cols.status], fields[cols.status], statusMessage)
			ok = false
		}
		for i, col := range cols.attrs {
			values[i] = nil
			v := strings.TrimSpace(fields[col])
			if v == "" || types[i] == "" {
				continue
			}
			x, want := attrValue(v, types[i])
			if want != "" {
				bad(cr.header[col], fields[col], typeMismatch(names[i], v, types[i], want))
				ok = false
				continue
			}
			values[i] = x
		}
		if !ok {
			return nil
		}
		b, err := store.AppendAttributes(lf.buf[:0], names, values)
		if err != nil {
			bad("", "", err.Error())
			return nil
		}
		lf.buf = b
		if len(b) > 2 {
			row.Attrs = append([]byte(nil), b...) // the load keeps it until written
		}
		row.Line = line
		lf.good++
		return lf.load.Add(row)
	})
}
