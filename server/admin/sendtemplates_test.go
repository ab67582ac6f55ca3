package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An API send's job records the template version its messages were
// rendered from; the job JSON and the console's job page show it, and a
// new version of the template shows on the jobs made after it.
func TestAPISendJobShowsItsTemplateVersion(t *testing.T) {
	sb := newSendBench(t)
	base := strings.TrimSuffix(sb.url, "/api/v1/messages")
	send := func() int64 {
		t.Helper()
		req, _ := http.NewRequest("POST", sb.url, strings.NewReader(`{"partner":"acme","template":"otp","to":"912345678","vars":{"name":"Ana","code":"1234"}}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := sb.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			JobID int64 `json:"job_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send: %d %v", resp.StatusCode, err)
		}
		return out.JobID
	}
	jobJSON := func(id int64) string {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/jobs/%d", base, id), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := sb.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Templates json.RawMessage `json:"templates"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		var compact bytes.Buffer
		json.Compact(&compact, out.Templates)
		return compact.String()
	}

	first := send()
	if _, _, err := sb.in.PutTemplate(context.Background(), "acme", "otp", "channel: sms\n---\nOla {{.name}}, o seu codigo e {{.code}}.\n"); err != nil {
		t.Fatal(err)
	}
	second := send()
	if got, want := jobJSON(first), `[{"name":"otp","version":1}]`; got != want {
		t.Errorf("job %d templates = %s, want %s", first, got, want)
	}
	if got, want := jobJSON(second), `[{"name":"otp","version":2}]`; got != want {
		t.Errorf("job %d templates = %s, want %s", second, got, want)
	}

	c := browser(t)
	if resp, _ := page(t, c, "POST", base+"/login", url.Values{"token": {adminToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	resp, body := page(t, c, "GET", fmt.Sprintf("%s/jobs/%d", base, second), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("job page: %d", resp.StatusCode)
	}
	if want := `<td id="job-templates"><a href="/templates/acme/otp#v2">otp v2</a></td>`; !strings.Contains(body, want) {
		t.Errorf("the job page does not show the template version %q:\n%s", want, body)
	}
}
