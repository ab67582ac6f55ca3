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
// column's type is decided per file, from all its values (read says how
// that is done in one pass, mostly); every row is checked and streamed
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
	// bits of the types each new attribute's values fit; types what they
	// are written as (read says how they are decided).
	stored  map[string]string
	fits    map[string]int
	types   map[string]string
	infer   bool // types are decided while the rows are loaded
	retyped bool // a type changed after rows were written: the load was dropped
	load    *store.ListLoad
	good    int
	counts  store.ListCounts
	attrs   store.AttrsBuilder // per row, reused
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

// read checks every row and hands the good ones to the load, in one pass
// that types the new attribute columns as it goes: a column's values are
// written with the type its values so far fit. When a later value no
// longer fits that type (an integer column with a "12a" further down),
// the rows already written would be wrong, so the load is dropped, the
// rest of the file is only typed, and a second pass loads the file with
// the types of all its values, as two passes always did before (the first
// pass was a fifth of the reading).
func (lf *listFile) read(ctx context.Context, f *os.File) error {
	if !config.ValidListName(lf.list) {
		return &fileLevelError{Msg: fmt.Sprintf("%q is not a list name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit; move the file into lists/<name>/", lf.list)}
	}
	folder := config.ListsDir + "/" + lf.list + "/"
	var err error
	if lf.stored, err = lf.in.st.ContactFields(ctx, lf.p.cfg.Name); err != nil {
		return err
	}
	lf.fits, lf.types, lf.infer = map[string]int{}, map[string]string{}, true
	if err := lf.begin(ctx, lf.rowsHint(f)); err != nil {
		return err
	}
	if err := lf.readDataFile(ctx, f, folder, listHolds, lf.loadCSV); err != nil {
		return err
	}
	if lf.retyped {
		lf.types, lf.infer, lf.retyped = decideTypes(lf.fits, lf.stored), false, false
		rows := lf.rows
		lf.rows, lf.good, lf.bad, lf.lastBad, lf.errs, lf.unlisted = 0, 0, 0, 0, nil, 0
		if err := lf.begin(ctx, rows); err != nil {
			return err
		}
		if err := lf.readDataFile(ctx, f, folder, listHolds, lf.loadCSV); err != nil {
			return err
		}
	}
	if err := lf.load.CheckFields(lf.types); err != nil {
		var fe *store.FieldTypeError
		if errors.As(err, &fe) {
			// Another request gave the attribute its type meanwhile.
			return &fileLevelError{Msg: fmt.Sprintf("%v; nothing was changed, upload the file again", err)}
		}
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

// begin starts the file's load; rows sizes its first-import key filter.
func (lf *listFile) begin(ctx context.Context, rows int) error {
	var err error
	lf.load, err = lf.in.st.BeginListLoad(ctx, lf.p.cfg.Name, lf.list, store.ListLoadOptions{Replace: lf.replace, Rows: rows}, true)
	return err
}

// rowsHint guesses how many rows a file has, before reading it, from its
// size: a row of a contact export with attributes is about 100 bytes. A
// guess too low only makes the key filter grow (a key is then tested in
// each of its parts), one too high costs its memory; 0 for a compressed
// file.
func (lf *listFile) rowsHint(f *os.File) int {
	fi, err := f.Stat()
	if err != nil || kindOf(lf.rel) != kindPlain {
		return 0
	}
	return int(min(fi.Size()/100, int64(lf.p.cfg.MaxRows)))
}

// retype drops the load when a column's values stop fitting the type the
// rows before were written with; the pass goes on only typing.
func (lf *listFile) retype() {
	lf.retyped = true
	lf.load.Abort()
	lf.load = nil
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

func (lf *listFile) emptyMessage() string {
	return "the file is empty; upload a CSV with a header line (email, phone and/or ref, optional status, then attribute columns) and at least one row"
}

// loadCSV reads one CSV: every row checked, the good ones handed to the
// load. While the types are inferred (read), a new column's type is what
// its values so far fit.
func (lf *listFile) loadCSV(ctx context.Context, r io.Reader) error {
	cr, err := lf.openDataCSV(r, lf.emptyMessage())
	if err != nil {
		return err
	}
	cols, err := lf.columns(cr)
	if err != nil {
		return err
	}
	n := len(cols.attrs)
	names := make([]string, n)
	keys := make([][]byte, n)
	types := make([]string, n)
	known := make([]bool, n) // the partner has the type: values are checked against it
	fits := make([]int, n)   // what the values so far fit (inferred columns)
	seen := make([]bool, n)
	for i, col := range cols.attrs {
		names[i] = cr.names[col]
		keys[i] = store.AttrKey(names[i])
		if t, ok := lf.stored[names[i]]; ok {
			types[i], known[i] = t, true
			continue
		}
		types[i] = lf.types[names[i]] // "" while no value has been seen
		fits[i] = fitsAny
		if f, ok := lf.fits[names[i]]; ok {
			fits[i], seen[i] = f, true
		}
	}
	defer func() {
		for i := range names {
			if known[i] || !seen[i] || !lf.infer {
				continue
			}
			lf.fits[names[i]] = fits[i]
			if !lf.retyped {
				lf.types[names[i]] = types[i]
			}
		}
	}()
	// typeValue notes what v (trimmed, not empty) of inferred column i
	// fits and returns those bits (0 once the column is text), dropping
	// the load if the column's type changes.
	typeValue := func(i int, v string) int {
		vf := 0
		if !seen[i] || fits[i] != 0 {
			vf = valueFits(v)
			fits[i] &= vf
		}
		seen[i] = true
		t := typeOf(fits[i])
		if types[i] == "" {
			types[i] = t
		} else if t != types[i] && !lf.retyped {
			lf.retype()
		}
		return vf
	}
	get := func(fields []string, i int) string {
		if i < 0 {
			return ""
		}
		return fields[i]
	}
	ab := &lf.attrs
	return lf.eachRecord(ctx, cr, func(fields []string, line int) error {
		if lf.retyped {
			for i, col := range cols.attrs {
				if !known[i] {
					if v := strings.TrimSpace(fields[col]); v != "" {
						typeValue(i, v)
					}
				}
			}
			return nil
		}
		bad := func(column, value, msg string) { lf.rowError(line, column, value, msg) }
		row, ok := contactKeys(lf.phones, get(fields, cols.email), get(fields, cols.phone), get(fields, cols.ref), bad)
		if st, valid := contactStatus(get(fields, cols.status)); valid {
			row.Status = st
		} else {
			bad(cr.header[cols.status], fields[cols.status], statusMessage)
			ok = false
		}
		ab.Reset()
		for i, col := range cols.attrs {
			v := strings.TrimSpace(fields[col])
			if v == "" {
				continue
			}
			vf := -1
			if !known[i] && lf.infer {
				if vf = typeValue(i, v); lf.retyped {
					continue // typing the rest of the row only
				}
			}
			if types[i] == "" {
				continue // no value of the column had one (second pass)
			}
			if want := appendAttr(ab, keys[i], v, types[i], vf); want != "" {
				bad(cr.header[col], fields[col], typeMismatch(names[i], v, types[i], want))
				ok = false
			}
		}
		if !ok || lf.retyped {
			return nil
		}
		if !ab.Empty() {
			row.Attrs = ab.Bytes() // a copy: the load keeps it until written
		}
		row.Line = line
		lf.good++
		return lf.load.Add(row)
	})
}
