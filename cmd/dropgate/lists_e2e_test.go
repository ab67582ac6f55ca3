package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
)

// startListDaemon is startSuppressDaemon with acme's list "vip" in
// replace mode.
func startListDaemon(t *testing.T) *testDaemon {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Partners[0].APIKey = acmeAPIKey
	cfg.Partners[0].Lists = []config.PartnerList{{Name: "vip", Mode: config.ListModeReplace}}
	beta := cfg.Partners[0]
	beta.Name, beta.APIKey, beta.Lists = "beta", betaListKey, nil
	cfg.Partners = append(cfg.Partners, beta)
	return startDaemon(t, cfg)
}

const betaListKey = "beta-api-key-0123456789abcdef"

// call sends a request with a bearer token (and body, as JSON, when not
// empty) and returns the status and the decoded answer.
func (d *testDaemon) call(t *testing.T, method, token, path, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+d.Addrs.Admin.String()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, raw)
	}
	return resp.StatusCode, out
}

// waitReport waits for reports/<name> of acme and returns its rows.
func waitReport(t *testing.T, d *testDaemon, name string) [][]string {
	t.Helper()
	path := filepath.Join(d.Home("acme"), "reports", name)
	waitFor(t, time.Minute, "reports/"+name, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	return readCSV(t, path)
}

// listCounts is GET /api/v1/lists/{list} as acme.
func listCounts(t *testing.T, d *testDaemon, list string) (subscribed, unsubscribed float64) {
	t.Helper()
	code, body := d.call(t, "GET", acmeAPIKey, "/api/v1/lists/"+list, "")
	if code != http.StatusOK {
		t.Fatalf("GET list %s: %d %v", list, code, body)
	}
	return body["subscribed"].(float64), body["unsubscribed"].(float64)
}

// List files dropped over the real SFTP server: a first drop inserts, a
// second updates, unsubscribes and keeps what an empty cell leaves; a
// replace list's drop removes the members it does not name; a file with a
// bad row applies nothing and reports line and column.
func TestListDropsOverSFTPUpsertReplaceAndReject(t *testing.T) {
	d := startListDaemon(t)
	sc := sftpClient(t, d)
	for _, dir := range []string{"/lists/news", "/lists/vip"} {
		if err := sc.Mkdir(dir); err != nil {
			t.Fatalf("mkdir %s: %v", dir, err)
		}
	}
	sftpPut(t, sc, "/lists/news/first.csv", "email;phone;first_name;orders;vip\n"+
		"Ana@Example.com;912 345 678;Ana;3;true\nbia@example.com;;Bia;1;false\n;913 000 111;Rui;0;false\n")
	if got := waitReport(t, d, "first.csv.result.csv"); len(got) != 2 || strings.Join(got[1], ",") != "3,3,0,0,0,0" {
		t.Fatalf("first result report = %v, want 3 rows inserted", got)
	}
	if s, u := listCounts(t, d, "news"); s != 3 || u != 0 {
		t.Fatalf("news after the first drop: %v subscribed, %v unsubscribed", s, u)
	}

	// Ana's orders change (first_name left as it is), Bia unsubscribes,
	// Rui is the same, Carla is new.
	sftpPut(t, sc, "/lists/news/second.csv", "phone,email,status,first_name,orders\n"+
		"+351912345678,,,,4\n,bia@example.com,unsubscribed,,\n913000111,,,Rui,0\n,carla@example.com,,Carla,7\n")
	if got := waitReport(t, d, "second.csv.result.csv"); strings.Join(got[0], ",") != "rows,inserted,updated,unchanged,rejected,removed" ||
		strings.Join(got[1], ",") != "4,1,2,1,0,0" {
		t.Fatalf("second result report = %v, want 1 inserted, 2 updated, 1 unchanged", got)
	}
	if s, u := listCounts(t, d, "news"); s != 3 || u != 1 {
		t.Fatalf("news after the second drop: %v subscribed, %v unsubscribed", s, u)
	}
	code, body := d.call(t, "GET", acmeAPIKey, "/api/v1/contacts?phone=912345678", "")
	if code != http.StatusOK {
		t.Fatalf("GET contact: %d %v", code, body)
	}
	c := body["contact"].(map[string]any)
	attrs := c["attributes"].(map[string]any)
	if c["email"] != "ana@example.com" || attrs["first_name"] != "Ana" || attrs["orders"] != float64(4) || attrs["vip"] != true {
		t.Errorf("ana = %v", c)
	}

	// Replace mode: the second file is the whole list.
	sftpPut(t, sc, "/lists/vip/all.csv", "email\nana@example.com\nbia@example.com\ncarla@example.com\n")
	waitReport(t, d, "all.csv.result.csv")
	sftpPut(t, sc, "/lists/vip/now.csv", "email\ncarla@example.com\ndora@example.com\n")
	if got := waitReport(t, d, "now.csv.result.csv"); strings.Join(got[1], ",") != "2,1,0,1,0,2" {
		t.Fatalf("replace result report = %v, want 1 inserted, 1 unchanged, 2 removed", got)
	}
	if s, _ := listCounts(t, d, "vip"); s != 2 {
		t.Errorf("vip has %v members, want 2", s)
	}
	// Ana left vip only, not news.
	_, body = d.call(t, "GET", acmeAPIKey, "/api/v1/contacts?email=ana@example.com", "")
	if lists := body["lists"].([]any); len(lists) != 1 || lists[0].(map[string]any)["list"] != "news" {
		t.Errorf("ana's lists = %v", lists)
	}

	// A bad row anywhere: nothing applied, every error by line and column.
	sftpPut(t, sc, "/lists/news/bad.csv", "email,orders,status\nerin@example.com,2,\nfrank@example.com,many,\nnot-an-address,1,\ngil@example.com,3,maybe\n")
	errs := waitReport(t, d, "bad.csv.errors.csv")
	got := map[string]bool{}
	for _, r := range errs[1:] {
		got[r[0]+" "+r[1]] = true
	}
	if !got["3 orders"] || !got["4 email"] || !got["5 status"] || len(errs) != 4 {
		t.Errorf("errors report = %v, want line 3 orders, line 4 email, line 5 status", errs)
	}
	if code, _ := d.call(t, "GET", acmeAPIKey, "/api/v1/contacts?email=erin@example.com", ""); code != http.StatusNotFound {
		t.Errorf("a good row of a rejected file was applied: %d", code)
	}
	if _, err := os.Stat(filepath.Join(d.Home("acme"), "reports", "bad.csv.result.csv")); err == nil {
		t.Error("a rejected file has a result report")
	}
}

// The list API: create, upsert with per-index problems (nothing stored),
// page, look up, remove; every route hides another partner's lists and
// contacts (404) from a partner key.
func TestListAPIChecksAndIsolatesPartners(t *testing.T) {
	d := startListDaemon(t)
	if code, body := d.call(t, "POST", acmeAPIKey, "/api/v1/lists", `{"name": "news"}`); code != http.StatusCreated || body["name"] != "news" {
		t.Fatalf("create: %d %v", code, body)
	}
	if code, _ := d.call(t, "POST", acmeAPIKey, "/api/v1/lists", `{"name": "news"}`); code != http.StatusOK {
		t.Errorf("create again: %d, want 200", code)
	}
	if code, _ := d.call(t, "POST", acmeAPIKey, "/api/v1/lists", `{"name": "../x"}`); code != http.StatusUnprocessableEntity {
		t.Errorf("bad name: %d, want 422", code)
	}
	code, body := d.call(t, "POST", acmeAPIKey, "/api/v1/lists/news/contacts", `{"contacts": [
		{"email": "ana@example.com", "attributes": {"orders": 3, "city": "Lisbon"}},
		{"email": "not-an-address"},
		{"phone": "12"},
		{"email": "bia@example.com", "attributes": {"orders": "many"}},
		{"ref": "r-1", "status": "gone"},
		{"attributes": {"city": "Porto"}}]}`)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("bad POST: %d %v", code, body)
	}
	fields := map[string]bool{}
	for _, p := range body["error"].(map[string]any)["details"].([]any) {
		fields[p.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"contacts[1].email", "contacts[2].phone", "contacts[4].status", "contacts[5].email"} {
		if !fields[f] {
			t.Errorf("no problem for %s in %v", f, body)
		}
	}
	if fields["contacts[0].email"] {
		t.Errorf("the good entry was reported: %v", body)
	}
	if s, _ := listCounts(t, d, "news"); s != 0 {
		t.Fatalf("a refused request stored %v contacts", s)
	}
	code, body = d.call(t, "POST", acmeAPIKey, "/api/v1/lists/news/contacts", `{"contacts": [
		{"email": "Ana@example.com", "phone": "912 345 678", "attributes": {"orders": 3, "city": "Lisbon"}},
		{"email": "bia@example.com", "status": "unsubscribed"},
		{"ref": "r-1"}]}`)
	if code != http.StatusOK || body["inserted"] != float64(3) {
		t.Fatalf("POST: %d %v", code, body)
	}
	// The attribute is an integer now: a string does not fit it.
	code, body = d.call(t, "POST", acmeAPIKey, "/api/v1/lists/news/contacts", `{"contacts": [{"email": "ana@example.com", "attributes": {"orders": "many"}}]}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body["error"].(map[string]any)["message"].(string), "contacts[0].attributes.orders") {
		t.Errorf("type mismatch: %d %v", code, body)
	}
	// Paging.
	code, body = d.call(t, "GET", acmeAPIKey, "/api/v1/lists/news/contacts?limit=2", "")
	if code != http.StatusOK || len(body["contacts"].([]any)) != 2 || body["next_after"] == nil {
		t.Fatalf("first page: %d %v", code, body)
	}
	next := int(body["next_after"].(float64))
	_, body = d.call(t, "GET", acmeAPIKey, "/api/v1/lists/news/contacts?limit=2&after="+strconv.Itoa(next), "")
	if page := body["contacts"].([]any); len(page) != 1 || page[0].(map[string]any)["ref"] != "r-1" {
		t.Errorf("second page: %v", body)
	}
	_, body = d.call(t, "GET", acmeAPIKey, "/api/v1/lists/news/contacts?status=unsubscribed", "")
	if page := body["contacts"].([]any); len(page) != 1 || page[0].(map[string]any)["email"] != "bia@example.com" {
		t.Errorf("unsubscribed: %v", body)
	}

	// Partner isolation: beta sees none of it, on every route.
	if code, body := d.call(t, "GET", betaListKey, "/api/v1/lists", ""); code != http.StatusOK || len(body["lists"].([]any)) != 0 {
		t.Errorf("beta lists: %d %v", code, body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/lists/news", ""},
		{"GET", "/api/v1/lists/news/contacts", ""},
		{"POST", "/api/v1/lists/news/contacts", `{"contacts": [{"email": "x@example.com"}]}`},
		{"DELETE", "/api/v1/lists/news/contacts?email=ana@example.com", ""},
		{"GET", "/api/v1/contacts?email=ana@example.com", ""},
	} {
		if code, body := d.call(t, c.method, betaListKey, c.path, c.body); code != http.StatusNotFound {
			t.Errorf("beta %s %s: %d %v, want 404", c.method, c.path, code, body)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/lists?partner=acme", ""},
		{"POST", "/api/v1/lists", `{"partner": "acme", "name": "x"}`},
		{"GET", "/api/v1/lists/news?partner=acme", ""},
		{"POST", "/api/v1/lists/news/contacts", `{"partner": "acme", "contacts": [{"email": "x@example.com"}]}`},
		{"GET", "/api/v1/contacts?partner=acme&email=ana@example.com", ""},
	} {
		if code, _ := d.call(t, c.method, betaListKey, c.path, c.body); code != http.StatusForbidden {
			t.Errorf("beta naming acme: %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	if s, _ := listCounts(t, d, "news"); s != 2 {
		t.Errorf("news after beta's attempts: %v subscribed", s)
	}

	// Removing a member keeps the contact.
	if code, body := d.call(t, "DELETE", acmeAPIKey, "/api/v1/lists/news/contacts?phone=%2B351912345678", ""); code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, body)
	}
	if code, body := d.call(t, "DELETE", acmeAPIKey, "/api/v1/lists/news/contacts?phone=912345678", ""); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d %v", code, body)
	}
	code, body = d.call(t, "GET", acmeAPIKey, "/api/v1/contacts?email=ANA@example.com", "")
	if code != http.StatusOK || len(body["lists"].([]any)) != 0 {
		t.Errorf("ana after removal: %d %v", code, body)
	}
	// Admin tokens name the partner.
	if code, _ := d.call(t, "GET", testAdminToken, "/api/v1/lists/news", ""); code != http.StatusBadRequest {
		t.Errorf("admin without partner: %d", code)
	}
	if code, _ := d.call(t, "GET", testAdminToken, "/api/v1/lists/news?partner=acme", ""); code != http.StatusOK {
		t.Errorf("admin with partner: %d", code)
	}
}
