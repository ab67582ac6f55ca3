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

// Suppression files (suppress/*.csv) and API entries: recipients a partner
// must never message again. They are checked and normalised exactly like
// recipient rows (phones to E.164 with the partner's region), with email
// addresses lower-cased, and the sender asks the store before each message
// (SuppressionKey).

// colReason is a suppression file's optional column saying why (email,
// phone and channel are the recipient files' columns).
const colReason = "reason"

// SuppressEntry is one suppression as given in a file row or an API request.
type SuppressEntry struct {
	Email, Phone, Channel, Reason string
}

// SuppressionKey is the form a message's recipient is looked up in the
// suppression list: email addresses are stored lower-cased (phones are
// already E.164 on both sides).
func SuppressionKey(recipient string) string {
	for i := 0; i < len(recipient); i++ {
		if c := recipient[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(recipient)
		}
	}
	return recipient
}

// suppressChecker checks entries of one partner.
type suppressChecker struct {
	p      *partner
	phones *phoneNormalizer
}

// check turns one entry into its suppressions, or problems (column, value,
// message) for the partner.
func (sc *suppressChecker) check(e SuppressEntry, source string, bad func(column, value, msg string)) []store.Suppression {
	email, phone, channel := strings.TrimSpace(e.Email), strings.TrimSpace(e.Phone), strings.TrimSpace(e.Channel)
	var want string // the recipient field the channel uses, "" for any
	if channel != "" {
		var ch *config.Channel
		for i := range sc.p.channels {
			if sc.p.channels[i].Name == channel {
				ch = &sc.p.channels[i]
			}
		}
		if ch == nil {
			bad(colChannel, e.Channel, fmt.Sprintf("%q is not one of your channels (%s); leave channel empty to suppress on every channel", channel, strings.Join(sc.p.cfg.Channels, ", ")))
			return nil
		}
		want = ch.RecipientField()
		if (want == colEmail && email == "") || (want == colPhone && phone == "") {
			bad(want, "", fmt.Sprintf("channel %q sends to the %s column, which is empty in this row; give the %s, or leave channel empty", channel, want, want))
			return nil
		}
	}
	if email == "" && phone == "" {
		bad(colEmail, "", "the row has neither email nor phone; give the address or number never to message again")
		return nil
	}
	var out []store.Suppression
	add := func(r string) {
		out = append(out, store.Suppression{Partner: sc.p.cfg.Name, Channel: channel, Recipient: r, Reason: strings.TrimSpace(e.Reason), Source: source})
	}
	ok := true
	if email != "" && want != colPhone {
		if addr, msg := checkEmail(email); msg != "" {
			bad(colEmail, e.Email, msg)
			ok = false
		} else {
			add(strings.ToLower(addr))
		}
	}
	if phone != "" && want != colEmail {
		if num, msg := sc.phones.normalize(phone); msg != "" {
			bad(colPhone, e.Phone, msg)
			ok = false
		} else {
			add(num)
		}
	}
	if !ok {
		return nil
	}
	return out
}

// CheckSuppressions checks API suppression entries of a partner as rows of
// a suppress/ file are checked. It returns the suppressions to store, or
// every problem (Field "suppressions[i].email"); nothing is stored when one
// entry is bad.
func (in *Ingester) CheckSuppressions(partnerName string, entries []SuppressEntry) ([]store.Suppression, []Problem, error) {
	p := in.partners[partnerName]
	if p == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	sc := &suppressChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region)}
	var out []store.Suppression
	var problems []Problem
	for i, e := range entries {
		out = append(out, sc.check(e, "api", func(column, value, msg string) {
			problems = append(problems, Problem{Field: fmt.Sprintf("suppressions[%d].%s", i, column), Value: value, Message: msg})
		})...)
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return out, nil, nil
}

// isSuppressItem reports whether the file is in the partner's suppress/.
func isSuppressItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.SuppressDir+"/")
}

// ingestSuppressFile reads one file of suppress/ and stores its
// suppressions, all or nothing (applyfile.go): a bad row (or, under
// on_bad_rows = "skip_rows", no good row) rejects the file with
// reports/<file>.errors.csv; a good file gets reports/<file>.result.csv
// with how many were added and how many were already stored.
func (in *Ingester) ingestSuppressFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	sf := &suppressFile{fileJob: fileJob{in: in, p: p, rel: rel}, checker: suppressChecker{p: p, phones: newPhoneNormalizer(p.cfg.Region)}}
	return in.ingestAppliedFile(ctx, p, rel, how, mk, sf)
}

// suppressFile is the reading of one suppress/ file. It borrows fileJob's
// row-error bookkeeping and decompression bound.
type suppressFile struct {
	fileJob
	checker suppressChecker
	sups    []store.Suppression
}

func (sf *suppressFile) job() *fileJob   { return &sf.fileJob }
func (sf *suppressFile) abort()          {}
func (sf *suppressFile) nothing() string { return "nothing was suppressed" }

func (sf *suppressFile) applicable() bool {
	return sf.bad == 0 || sf.p.skipsBadRows() && len(sf.sups) > 0
}

func (sf *suppressFile) apply(ctx context.Context, fileID int64) ([]string, []string, error) {
	added, present, err := sf.in.st.ApplySuppressionFile(ctx, fileID, sf.rows, sf.sups)
	if err != nil {
		return nil, nil, err
	}
	return []string{"rows", "added", "already_suppressed", "skipped_rows"},
		[]string{strconv.Itoa(sf.rows), strconv.Itoa(added), strconv.Itoa(present), strconv.Itoa(sf.bad)}, nil
}

// read reads every CSV of the file (.csv, .txt, .gz, or each CSV in a .zip).
func (sf *suppressFile) read(ctx context.Context, f *os.File) error {
	return sf.readDataFile(ctx, f, "suppress/", "the suppression CSVs", sf.readCSV)
}

// readCSV reads one CSV stream of suppressions.
func (sf *suppressFile) readCSV(ctx context.Context, r io.Reader) error {
	cr, err := sf.openDataCSV(r, "the file is empty; upload a CSV with a header line (email and/or phone, optional reason and channel) and at least one row")
	if err != nil {
		return err
	}
	pos := map[string]int{}
	for i, n := range cr.names {
		switch n {
		case colEmail, colPhone, colReason, colChannel:
			if _, dup := pos[n]; dup {
				return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; keep one", n)}
			}
			pos[n] = i
		default:
			return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header's column %d, %q, is not a suppression column; use email and/or phone, and optionally reason and channel", i+1, cr.header[i])}
		}
	}
	_, hasEmail := pos[colEmail]
	_, hasPhone := pos[colPhone]
	if !hasEmail && !hasPhone {
		return &fileLevelError{Line: 1, Msg: "the header has neither an email nor a phone column; name the column of addresses or numbers never to message again"}
	}
	cell := func(fields []string, name string) string {
		if i, ok := pos[name]; ok && i < len(fields) {
			return fields[i]
		}
		return ""
	}
	rowsBefore := sf.rows
	err = sf.eachRecord(ctx, cr, func(fields []string, line int) error {
		e := SuppressEntry{Email: cell(fields, colEmail), Phone: cell(fields, colPhone), Channel: cell(fields, colChannel), Reason: cell(fields, colReason)}
		sups := sf.checker.check(e, sf.rel, func(column, value, msg string) { sf.rowError(line, column, value, msg) })
		sf.sups = append(sf.sups, sups...)
		return nil
	})
	if err != nil {
		return err
	}
	if sf.rows == rowsBefore {
		return &fileLevelError{Msg: "the file has a header line but no rows, so nothing was suppressed"}
	}
	return nil
}

// ingestDataFile reads a file of inbox/, suppress/ or lists/<list>/ that
// counts as complete.
func (in *Ingester) ingestDataFile(ctx context.Context, p *partner, rel string, how arrival, mk *markerCheck) error {
	if isSuppressItem(workItem{rel: rel}) {
		return in.ingestSuppressFile(ctx, p, rel, how, mk)
	}
	if isSendsItem(rel) {
		return in.ingestSendsFile(ctx, p, rel, how, mk) // sendsingest.go
	}
	if isEventsItem(workItem{rel: rel}) {
		return in.ingestEventsFile(ctx, p, rel, how, mk)
	}
	if _, ok := listOf(rel); ok {
		return in.ingestListFile(ctx, p, rel, how, mk)
	}
	return in.ingestRecipientFile(ctx, p, rel, how, mk)
}
