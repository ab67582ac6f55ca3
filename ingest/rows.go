package ingest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// Columns with a meaning; every other column is a template variable.
const (
	colEmail    = "email"
	colPhone    = "phone"
	colTemplate = "template"
	colSendAt   = "send_at"
	colRef      = "ref"
	colMessage  = "message"
	colChannel  = "channel"
)

// columns is the header of one CSV, resolved once.
type columns struct {
	names []string // trimmed, lower case
	index map[string]int
	// Positions of the meaningful columns, -1 when absent.
	email, phone, template, sendAt, ref, message, channel int
	vars                                                  []int // positions of variable columns
	// missing caches, per template, the variables it uses that no column
	// of this file holds; plans, its column plan (rowvars.go).
	missing map[*messageTemplate][]string
	plans   map[*messageTemplate]*columnPlan
}

func newColumns(names []string) (*columns, *fileLevelError) {
	c := &columns{names: names, index: map[string]int{}, missing: map[*messageTemplate][]string{}}
	for i, n := range names {
		if n == "" {
			continue
		}
		if _, dup := c.index[n]; dup {
			return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header names the column %q twice; give each column its own name", n)}
		}
		c.index[n] = i
	}
	pos := func(n string) int {
		if i, ok := c.index[n]; ok {
			return i
		}
		return -1
	}
	c.email, c.phone, c.template, c.sendAt = pos(colEmail), pos(colPhone), pos(colTemplate), pos(colSendAt)
	c.ref, c.message, c.channel = pos(colRef), pos(colMessage), pos(colChannel)
	for i, n := range names {
		switch n {
		case "", colEmail, colPhone, colTemplate, colSendAt, colRef, colMessage, colChannel:
		default:
			c.vars = append(c.vars, i)
		}
	}
	if c.email < 0 && c.phone < 0 {
		if v := dataLike(names); v != "" {
			return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the first line looks like data, not a header (it holds '%s'); add a first line that names the columns, like phone;first_name or email;first_name", v)}
		}
		return nil, &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header has no email or phone column, so no row says whom to send to; name that column email or phone (the header has: %s)", strings.Join(names, ", "))}
	}
	return c, nil
}

// literalChannel is the channel of a row with a literal message and no
// channel column: the first of the partner's channels whose recipient
// column the file has (a phone;message file goes by SMS even when the
// partner's first channel is email), or nil for none.
func (c *columns) literalChannel(channels []config.Channel) *config.Channel {
	for i := range channels {
		if _, ok := c.index[channels[i].RecipientField()]; ok {
			return &channels[i]
		}
	}
	return nil
}

func recipientNoun(field string) string {
	if field == colPhone {
		return "a phone number"
	}
	return "an email address"
}

// dataLike returns a header cell that looks like an address or a number.
func dataLike(names []string) string {
	for _, n := range names {
		digits := 0
		for _, r := range n {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if strings.Contains(n, "@") || digits >= 6 {
			return n
		}
	}
	return ""
}

// missingVars returns the variables t uses that the file has no column for.
func (c *columns) missingVars(t *messageTemplate) []string {
	m, ok := c.missing[t]
	if !ok {
		for _, v := range t.vars {
			if _, has := c.index[v]; !has {
				m = append(m, v)
			}
		}
		c.missing[t] = m
	}
	return m
}

// readCSV reads one CSV stream into the job: header, then every record.
func (fj *fileJob) readCSV(ctx context.Context, r io.Reader) error {
	cr, err := newCSVReader(r, fj.p.cfg.Encoding, fj.in.cfg.Ingest.MaxRowBytes)
	switch {
	case errors.Is(err, errEmptyFile):
		return &fileLevelError{Msg: "the file is empty; upload a CSV with a header line and at least one row"}
	case err != nil:
		return csvFileError(err)
	}
	if cr.checkUTF8 {
		for i, h := range cr.header {
			if !utf8.ValidString(h) {
				return &fileLevelError{Line: 1, Msg: fmt.Sprintf("the header's column %d is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding (for example windows-1252)", i+1)}
			}
		}
	}
	cols, ferr := newColumns(cr.names)
	if ferr != nil {
		return ferr
	}
	rowsBefore := fj.rows
	var pe *csv.ParseError // outside the loop: errors.As would move it to the heap at every row
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		fields, line, err := cr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if line <= fj.skipThrough && (err == nil || errors.As(err, &pe)) {
			fj.skip(line) // the earlier upload's job had it
			continue
		}
		if fj.rows >= fj.p.cfg.MaxRows {
			return fj.tooManyRows()
		}
		if err != nil {
			if errors.As(err, &pe) {
				fj.rows++
				fj.rowError(line, "", "", quoteErrorMessage(pe))
				continue
			}
			return csvFileError(err)
		}
		fj.rows++
		if err := fj.row(ctx, cols, cr, fields, line); err != nil {
			return err
		}
	}
	if fj.rows == rowsBefore && fj.skipped == 0 {
		return &fileLevelError{Msg: "the file has a header line but no rows, so there is nothing to send"}
	}
	return nil
}

func quoteErrorMessage(pe *csv.ParseError) string {
	if errors.Is(pe.Err, csv.ErrBareQuote) {
		return fmt.Sprintf("a double quote (\") at character %d is inside a value that does not start with one; put the whole value in double quotes and write each \" inside it twice", pe.Column)
	}
	if pe.Line > pe.StartLine {
		return fmt.Sprintf("a quoted value that starts on this line is not closed where it should be, so lines %d to %d were read as one value; close the quote, and write each \" inside a quoted value twice", pe.StartLine, pe.Line)
	}
	return fmt.Sprintf("a double quote (\") is missing or extra in a quoted value at character %d; close the quote, and write each \" inside a quoted value twice", pe.Column)
}

// rowError records one problem of one row.
func (fj *fileJob) rowError(line int, column, value, msg string) {
	if line != fj.lastBad {
		fj.bad++
		fj.lastBad = line
	}
	if len(fj.errs) >= maxListedErrors {
		fj.unlisted++
		return
	}
	if fj.entry != "" {
		msg = fj.entry + ": " + msg
	}
	fj.errs = append(fj.errs, store.FileError{Line: line, Column: column, Value: value, Error: msg})
}

// row checks one record and, when it is good, renders and queues it. It
// reports every problem of the row, not only the first.
func (fj *fileJob) row(ctx context.Context, cols *columns, cr *csvReader, fields []string, line int) error {
	if len(fields) != len(cols.names) {
		fj.rowError(line, "", "", fmt.Sprintf("the row has %d values but the header has %d columns; check for a missing or extra '%c', or a value holding '%c' that is not in double quotes",
			len(fields), len(cols.names), cr.comma, cr.comma))
		return nil
	}
	if cr.checkUTF8 && !cr.validUTF8(fields) {
		bad := false
		for i, f := range fields {
			if !utf8.ValidString(f) {
				bad = true
				fj.rowError(line, cr.header[i], strings.ToValidUTF8(f, "\uFFFD"), "this value is not valid UTF-8 text; save the file as UTF-8, or ask your administrator to set your encoding (for example windows-1252)")
			}
		}
		if bad {
			return nil
		}
	}
	startBad := fj.bad
	get := func(i int) string {
		if i < 0 {
			return ""
		}
		return strings.TrimSpace(fields[i])
	}

	// Which template, or which literal message.
	var t *messageTemplate
	channel, recipientField, literal := "", "", ""
	if name := get(cols.template); name != "" {
		tl := fj.lookupTemplate(ctx, name)
		if tl.t == nil {
			fj.rowError(line, colTemplate, name, tl.msg)
			return nil
		}
		t = tl.t
	} else if fj.folder != nil {
		t = fj.folder
	} else if literal = get(cols.message); literal != "" {
		ch := fj.p.channels[0]
		if c := cols.literalChannel(fj.p.channels); c != nil {
			ch = *c
		}
		if name := get(cols.channel); name != "" {
			c := findChannel(fj.p.channels, name)
			if c == nil {
				fj.rowError(line, colChannel, name, fmt.Sprintf("channel %q is not one of your channels (%s)", name, channelNames(fj.p.channels)))
				return nil
			}
			ch = *c
		}
		channel, recipientField = ch.Name, ch.RecipientField()
	} else {
		fj.rowError(line, "", "", "the row names no template and has no message; put the file in inbox/<template>/, or fill a template or message column")
		return nil
	}
	if t != nil {
		channel, recipientField = t.channel, t.recipient
	}

	// The recipient.
	var recipient string
	idx := cols.email
	if recipientField == colPhone {
		idx = cols.phone
	}
	if idx < 0 {
		fj.rowError(line, recipientField, "", fmt.Sprintf("channel %s sends to %s, and the file has no %s column; add one", channel, recipientNoun(recipientField), recipientField))
	} else {
		var msg string
		if recipientField == colPhone {
			recipient, msg = fj.phones.normalize(fields[idx])
		} else {
			recipient, msg = checkEmail(fields[idx])
		}
		if msg != "" {
			fj.rowError(line, cr.header[idx], fields[idx], msg)
		}
	}

	m := store.Message{Partner: fj.p.cfg.Name, Channel: channel, Priority: store.PriorityBulk, Line: line,
		Ref: get(cols.ref), Recipient: recipient, Format: "text"}
	if s := get(cols.sendAt); s != "" {
		at, msg := parseSendAt(s, fj.p.loc)
		if msg != "" {
			fj.rowError(line, cr.header[cols.sendAt], fields[cols.sendAt], msg)
		}
		m.NextAttemptAt = at
	}
	// Only a channel whose driver reads the variables gets them stored
	// with the message; the render reads the fields (rowvars.go).
	if len(cols.vars) > 0 && fj.p.keepVars[channel] {
		m.Vars = cols.varsMap(fields)
	}
	if t != nil {
		missing := cols.missingVars(t)
		for _, v := range missing {
			msg := fmt.Sprintf("the template %q uses {{.%s}}, but the file has no %s column; add that column, or change the template", t.name, v, v)
			if _, ok := cols.index[strings.ToLower(v)]; ok {
				msg = fmt.Sprintf("the template %q uses {{.%s}}, but column names are read in lower case; write {{.%s}} in the template", t.name, v, strings.ToLower(v))
			}
			fj.rowError(line, v, "", msg)
		}
		if len(missing) == 0 && fj.bad == startBad {
			subject, body, err := fj.renderRow(ctx, cols, t, fields, m.Vars, m.Partner, m.Recipient)
			if err != nil {
				if stop := renderStop(ctx, t, line, err); stop != nil {
					return stop
				}
				fj.rowError(line, "", "", fmt.Sprintf("the template %q cannot be filled in for this row: %s", t.name, renderErrorText(err)))
			}
			m.Subject, m.Body, m.Format, m.Sender = subject, body, t.format, t.sender
		}
	} else {
		m.Body = literal
	}
	if fj.bad != startBad {
		return nil
	}
	fj.good++
	if err := fj.w.Add(m); err != nil {
		return fmt.Errorf("cannot queue row %d: %w", line, err)
	}
	return nil
}

// renderErrorText keeps the part of a template execution error a partner
// can act on.
func renderErrorText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "executing") {
		return s[i+2:]
	}
	return s
}

// lookupTemplate finds a template a row names, once per file and name.
func (fj *fileJob) lookupTemplate(ctx context.Context, name string) templateLookup {
	if tl, ok := fj.templates[name]; ok {
		return tl
	}
	var tl templateLookup
	t, err := fj.in.template(ctx, fj.p, name)
	switch {
	case err == nil:
		tl.t = t
	case errors.Is(err, store.ErrNotFound):
		tl.msg = fmt.Sprintf("there is no template named %q; upload templates/%s.tmpl, or correct the name", name, name)
	default:
		tl.msg = fmt.Sprintf("the template %q cannot be used: %v", name, err)
	}
	fj.templates[name] = tl
	return tl
}
