package ingest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// contact returns the partner's contact of that email, or fails.
func (e *testEnv) contact(partner, email string) store.Contact {
	e.t.Helper()
	c, err := e.st.FindContact(context.Background(), partner, email, "", "")
	if err != nil {
		e.t.Fatalf("contact %s: %v", email, err)
	}
	return c
}

// A list file upserts its rows with typed attributes; a second updates
// and unsubscribes; an empty cell keeps the stored value.
func TestListFileUpsertsTypedContacts(t *testing.T) {
	e := newTestEnv(t, nil)
	e.ingest("acme", "lists/news/a.csv", []byte("Email;Phone;City;Orders;VIP;Since;Zip\n"+
		"Ana@Example.com;912 345 678;Lisbon;3;true;2026-01-02T03:04:05Z;01234\n"+
		"bia@example.com;;Porto;12;false;2025-12-01T00:00:00+01:00;4000\n"))
	if f := e.lastFile("acme"); f.Status != store.FileQueued || f.RowsTotal != 2 {
		t.Fatalf("file = %+v", f)
	}
	if r := e.readReport("acme", "a.csv.result.csv"); r != "rows,inserted,updated,unchanged,rejected,removed\n2,2,0,0,0,0\n" {
		t.Fatalf("result report = %q", r)
	}
	ana := e.contact("acme", "ana@example.com")
	if ana.Phone != "+351912345678" || string(ana.Attributes) != `{"city":"Lisbon","orders":3,"since":"2026-01-02T03:04:05Z","vip":true,"zip":"01234"}` {
		t.Fatalf("ana = %+v %s", ana, ana.Attributes)
	}
	fields, _ := e.st.ContactFields(context.Background(), "acme")
	want := map[string]string{"city": "string", "orders": "integer", "vip": "boolean", "since": "time", "zip": "string"}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, fields[k], v)
		}
	}
	e.ingest("acme", "lists/news/b.csv", []byte("email,status,city,orders\nana@example.com,unsubscribed,,4\nbia@example.com,,Porto,12\ncarla@example.com,,Faro,\n"))
	if r := e.readReport("acme", "b.csv.result.csv"); !strings.HasSuffix(r, "\n3,1,1,1,0,0\n") {
		t.Fatalf("second result report = %q", r)
	}
	ana = e.contact("acme", "ana@example.com")
	if !strings.Contains(string(ana.Attributes), `"city":"Lisbon","orders":4`) {
		t.Errorf("ana after = %s", ana.Attributes)
	}
	li, err := e.st.ListInfoByName(context.Background(), "acme", "news")
	if err != nil || li.Subscribed != 2 || li.Unsubscribed != 1 {
		t.Fatalf("list = %+v %v", li, err)
	}
}

// A bad row anywhere applies nothing, and the report gives every error
// with its line and column: a value that does not fit its attribute's
// stored type, a bad key, a bad status.
func TestListFileWithBadRowsAppliesNothing(t *testing.T) {
	e := newTestEnv(t, nil)
	e.ingest("acme", "lists/news/a.csv", []byte("email,orders\nana@example.com,3\n"))
	e.ingest("acme", "lists/news/b.csv", []byte("email,orders,status\nbia@example.com,4,\nnot-an-email,5,\ncarla@example.com,many,\ndora@example.com,6,gone\n"))
	f := e.lastFile("acme")
	if f.Status != store.FileRejected {
		t.Fatalf("file = %+v", f)
	}
	r := e.readReport("acme", "b.csv.errors.csv")
	for _, want := range []string{"3,email,not-an-email,", "4,orders,many,\"\"\"many\"\" is not a whole number like 42", "5,status,gone,"} {
		if !strings.Contains(r, want) {
			t.Errorf("errors report lacks %q:\n%s", want, r)
		}
	}
	if _, err := e.st.FindContact(context.Background(), "acme", "bia@example.com", "", ""); err == nil {
		t.Error("a row of a rejected file was applied")
	}
	if e.readReport("acme", "b.csv.result.csv") != "" {
		t.Error("a rejected file has a result report")
	}
}

// With mode = "replace" the file is the whole list.
func TestReplaceListFileRemovesAbsentMembers(t *testing.T) {
	e := newTestEnv(t, func(c *config.Config) {
		c.Partners[0].Lists = []config.PartnerList{{Name: "vip", Mode: config.ListModeReplace}}
	})
	e.ingest("acme", "lists/vip/a.csv", []byte("email\nana@example.com\nbia@example.com\ncarla@example.com\n"))
	e.ingest("acme", "lists/vip/b.csv", []byte("email\nbia@example.com\ndora@example.com\n"))
	if r := e.readReport("acme", "b.csv.result.csv"); !strings.HasSuffix(r, "\n2,1,0,1,0,2\n") {
		t.Fatalf("result report = %q", r)
	}
	li, _ := e.st.ListInfoByName(context.Background(), "acme", "vip")
	if li.Subscribed != 2 {
		t.Fatalf("list = %+v", li)
	}
	// The contact stays, off the list.
	ana := e.contact("acme", "ana@example.com")
	lists, _ := e.st.ContactLists(context.Background(), ana.ID)
	if len(lists) != 0 {
		t.Errorf("ana's lists = %+v", lists)
	}
}

// A file is read once while its new columns' values keep fitting the
// type their first values gave; when a later value does not (here after
// more rows than one write batch), the file is read again with the types
// of all its values, and nothing of the first reading remains: no value
// written as a number that should be text, no error reported twice.
func TestListFileTypesAColumnByAllItsValues(t *testing.T) {
	e := newTestEnv(t, nil)
	var b strings.Builder
	b.WriteString("email,code,score,city\n")
	const rows = 1500
	for i := range rows {
		code, score := strconv.Itoa(i+1), strconv.Itoa(i)
		switch i {
		case 1200:
			code = "A-7" // the column becomes text
		case 1300:
			score = "2.5" // integers so far, a number from here
		}
		fmt.Fprintf(&b, "c%d@example.com,%s,%s,Lisbon\n", i, code, score)
	}
	e.ingest("acme", "lists/news/a.csv", []byte(b.String()))
	if r := e.readReport("acme", "a.csv.result.csv"); r != "rows,inserted,updated,unchanged,rejected,removed\n1500,1500,0,0,0,0\n" {
		t.Fatalf("result report = %q", r)
	}
	for email, want := range map[string]string{
		"c0@example.com":    `{"city":"Lisbon","code":"1","score":0}`,
		"c1200@example.com": `{"city":"Lisbon","code":"A-7","score":1200}`,
		"c1300@example.com": `{"city":"Lisbon","code":"1301","score":2.5}`,
	} {
		if c := e.contact("acme", email); string(c.Attributes) != want {
			t.Errorf("%s = %s, want %s", email, c.Attributes, want)
		}
	}
	fields, _ := e.st.ContactFields(context.Background(), "acme")
	if fields["code"] != "string" || fields["score"] != "number" || fields["city"] != "string" {
		t.Errorf("fields = %v", fields)
	}
	li, err := e.st.ListInfoByName(context.Background(), "acme", "news")
	if err != nil || li.Subscribed != rows {
		t.Fatalf("list = %+v %v", li, err)
	}

	// Bad rows before and after a change (level becomes text on line
	// 1102) are reported once each.
	b.Reset()
	b.WriteString("email,code,level\n")
	for i := range rows {
		email, code, level := fmt.Sprintf("d%d@example.com", i), "x", strconv.Itoa(i)
		switch i {
		case 10, 1400:
			email = "not-an-email"
		case 20:
			code = "" // an empty cell: nothing to check, nothing written
		case 1100:
			level = "high"
		}
		fmt.Fprintf(&b, "%s,%s,%s\n", email, code, level)
	}
	e.ingest("acme", "lists/news/b.csv", []byte(b.String()))
	if f := e.lastFile("acme"); f.Status != store.FileRejected {
		t.Fatalf("file = %+v", f)
	}
	r := e.readReport("acme", "b.csv.errors.csv")
	if !strings.HasPrefix(r, "line,column,value,error\n12,email,not-an-email,") || !strings.Contains(r, "\n1402,email,not-an-email,") || strings.Count(r, "\n") != 3 {
		t.Errorf("errors report: want lines 12 and 1402, once each:\n%s", r)
	}
	if _, err := e.st.FindContact(context.Background(), "acme", "d0@example.com", "", ""); err == nil {
		t.Error("a row of a rejected file was applied")
	}
	if fields, _ := e.st.ContactFields(context.Background(), "acme"); fields["level"] != "" {
		t.Errorf("a rejected file recorded the type of level: %v", fields)
	}
}

func TestValueFits(t *testing.T) {
	for v, want := range map[string]string{
		"42": "integer", "-7": "integer", "0": "integer", "007": "string", "4.5": "number", "1e3": "number",
		"99999999999999999999": "number", "true": "boolean", "FALSE": "boolean", "yes": "string",
		"2026-01-02T03:04:05Z": "time", "2026-01-02": "string", "+351": "string", "NaN": "string", "1.": "string",
	} {
		if got := typeOf(valueFits(v)); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
}

// A list file there before the start is taken by the rescan; one written
// in place into a list folder made afterwards is seen by the watcher.
func TestListFilesAreWatchedAndRescanned(t *testing.T) {
	e := newTestEnv(t, nil)
	e.write("acme", "lists/news/early.csv", []byte("email\nana@example.com\n"))
	e.runScanned()
	e.waitStatus("acme", "lists/news/early.csv", store.FileQueued)
	if err := os.Mkdir(e.home("acme", "lists/later"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.waitWatched(e.home("acme", "lists/later"))
	e.write("acme", "lists/later/a.csv", []byte("email\nbia@example.com\n"))
	e.waitStatus("acme", "lists/later/a.csv", store.FileQueued)
	if li, err := e.st.ListInfoByName(context.Background(), "acme", "later"); err != nil || li.Subscribed != 1 {
		t.Fatalf("later = %+v %v", li, err)
	}
	waitFor(t, "the file archived", 30*time.Second, func() bool { return !e.exists("acme", "lists/later/a.csv") })
}

// plainEmail's fast path accepts only what checkEmail accepts unchanged.
func TestPlainEmailAgreesWithCheckEmail(t *testing.T) {
	cases := []string{"ana@example.com", "Ana.Silva+news@mail.example.pt", "a_b%c-d@x-y.io", "ana@example", "ana@.com", "ana@example.com.",
		"a..b@example.com", ".a@example.com", "a.@example.com", "@example.com", "ana@", "ana", "Ana <ana@example.com>", "ana@@example.com",
		"ana@exa_mple.com", "ana@-example.com", "ana@example..com", "ana smith@example.com", "ana@example.com ", "\"ana\"@example.com",
		"ana!#$&'*/=?^`{|}~@example.com", "ana@[127.0.0.1]", "añа@example.com", "a@b.c", "ana@example.com,bia@example.com"}
	for i := range 2000 {
		b := []byte("ab.c@d.e-f")
		for j := range b {
			b[j] = "a.@-_+%Z9 "[(i*7+j*13+i*j)%10]
		}
		cases = append(cases, string(b))
	}
	fast := 0
	for _, c := range cases {
		if !plainEmail(c) {
			continue
		}
		fast++
		if got, msg := checkEmail(c); msg != "" || got != c {
			t.Errorf("plainEmail(%q) but checkEmail says %q %q", c, got, msg)
		}
	}
	if !plainEmail("ana@example.com") || fast < 5 {
		t.Fatalf("fast path took %d cases", fast)
	}
}
