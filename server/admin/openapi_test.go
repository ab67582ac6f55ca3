package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dropgate/dropgate/store"
)

const openAPIURL = "https://dropgate.invalid/openapi.json"

type openAPIDoc struct {
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, *jsonschema.Compiler) {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(openAPIURL, raw); err != nil {
		t.Fatal(err)
	}
	return doc, c
}

// pointer escapes a JSON pointer token.
func pointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// The routes table and the OpenAPI document name the same operations.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	s := &Server{}
	inTable := map[string]bool{}
	for _, rt := range s.apiRoutes() {
		inTable[rt.method+" "+rt.path] = true
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				inDoc[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	var missing, extra []string
	for k := range inTable {
		if !inDoc[k] {
			missing = append(missing, k)
		}
	}
	for k := range inDoc {
		if !inTable[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes missing from openapi.json: %v; documented but not routed: %v", missing, extra)
	}
}

// Every GET route answers a sample request with a body its documented 200
// schema accepts, and a refused request with the documented error shape.
func TestOpenAPISchemasMatchTheAnswers(t *testing.T) {
	_, c := loadOpenAPI(t)
	f := newFixture(t)
	ctx := context.Background()
	j := f.job(t, "acme", 3)
	now := time.Now()
	cs, err := f.store.ClaimMessages(ctx, j.ID, "sms", now, time.Minute, 10)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %v", err)
	}
	f.store.CompleteMessages(ctx, []store.Outcome{
		{ID: cs[0].ID, JobID: j.ID, Attempt: 1, Kind: store.OutcomeSent, ProviderID: "p-1", At: now},
		{ID: cs[1].ID, JobID: j.ID, Attempt: 1, Kind: store.OutcomeFailed, Error: "no such number", At: now},
		{ID: cs[2].ID, JobID: j.ID, Attempt: 1, Kind: store.OutcomeSent, At: now},
	})
	f.store.FinishJob(ctx, j.ID)
	fileID, _ := f.store.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/bad.csv", Size: 10, SHA256: "ab"})
	f.store.RejectFile(ctx, fileID, "2 rows rejected", 3, []store.FileError{{Line: 2, Column: "email", Value: "x", Error: "not an email address"}, {Line: 3, Error: "too few columns"}})
	tmpl, err := f.store.SaveTemplate(ctx, store.Template{Partner: "acme", Name: "welcome", Channel: "email", Subject: "Hi", Format: "text", Body: "Hello", Source: "channel: email\n---\nHello\n"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&fakeWorkflows{st: f.store}).Accept(ctx, []store.Event{{Partner: "acme", Name: "cart_abandoned", Email: "a@example.com", Key: "c1", Source: "api"}})
	if err != nil {
		t.Fatal(err)
	}
	news, err := f.store.EnsureList(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.PutContact(ctx, news, store.ContactInput{Email: "ana@example.com", Attributes: map[string]any{"orders": int64(3)}}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{
		"/api/v1/workflows/{name}/runs":               "cart",
		"/api/v1/runs/{id}":                           strconv.FormatInt(res[0].Started[0], 10),
		"/api/v1/lists/{list}":                        news.Name,
		"/api/v1/lists/{list}/contacts":               news.Name,
		"/api/v1/jobs/{id}":                           strconv.FormatInt(j.ID, 10),
		"/api/v1/jobs/{id}/messages":                  strconv.FormatInt(j.ID, 10),
		"/api/v1/messages/{id}":                       strconv.FormatInt(cs[1].ID, 10),
		"/api/v1/files/{id}":                          strconv.FormatInt(fileID, 10),
		"/api/v1/templates/{name}":                    tmpl.Name,
		"/api/v1/templates/{name}/versions/{version}": tmpl.Name,
	}
	query := map[string]string{
		"/api/v1/workflows/{name}/runs":               "?partner=acme",
		"/api/v1/lists/{list}":                        "?partner=acme",
		"/api/v1/lists/{list}/contacts":               "?partner=acme",
		"/api/v1/contacts":                            "?partner=acme&email=Ana@example.com",
		"/api/v1/templates/{name}":                    "?partner=acme",
		"/api/v1/templates/{name}/versions/{version}": "?partner=acme",
	}
	validate := func(what, schemaAt string, body []byte) {
		t.Helper()
		sch, err := c.Compile(openAPIURL + "#" + schemaAt)
		if err != nil {
			t.Fatalf("%s: schema %s: %v", what, schemaAt, err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v in %s", what, err, body)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: the answer does not match %s: %v\n%s", what, schemaAt, err, body)
		}
	}
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	checked := 0
	for _, rt := range (&Server{}).apiRoutes() {
		if rt.method != "GET" {
			continue
		}
		path := rt.path
		if id, ok := ids[rt.path]; ok {
			path = strings.Replace(strings.Replace(strings.Replace(path, "{id}", id, 1), "{name}", id, 1), "{list}", id, 1)
			path = strings.Replace(path, "{version}", strconv.Itoa(tmpl.Version), 1)
		}
		path += query[rt.path]
		code, body := get(path, adminToken)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
			continue
		}
		validate("GET "+path, "/paths/"+pointer(rt.path)+"/get/responses/200/content/application~1json/schema", body)
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d GET routes checked", checked)
	}
	code, body := get("/api/v1/jobs", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	validate("401", "/components/schemas/Error", body)
	code, body = get("/api/v1/jobs/999999", adminToken)
	if code != http.StatusNotFound {
		t.Fatalf("missing job: %d", code)
	}
	validate("404", "/components/schemas/Error", body)
}
