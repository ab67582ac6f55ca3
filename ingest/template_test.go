package ingest

import (
	"bytes"
	"context"
	"testing"

	"github.com/dropgate/dropgate/config"
)

func TestFastRenderMatchesExecute(t *testing.T) {
	channels := config.DefaultChannels()
	vars := map[string]string{"first_name": "Zé <b>\"", "order_id": "A-1", "day": "2026-03-05"}
	for _, tc := range []struct {
		src  string
		fast bool
	}{
		{"channel: sms\n---\nOla {{.first_name}}, a sua encomenda {{.order_id}} foi enviada.\n", true},
		{"channel: email\nsubject: Order {{.order_id}}\n---\n{{.first_name}}{{.order_id}}\n\nbye", true},
		{"channel: sms\n---\nOla {{upper .first_name}}", false},
		{"channel: sms\n---\n{{if .first_name}}x{{end}}", false},
		{"channel: email\nsubject: {{.order_id | printf \"%q\"}}\n---\n{{.first_name}}", false},
		{"channel: email\nformat: html\n---\n<p>{{.first_name}}</p>", false},
	} {
		mt, err := parseTemplate("t", tc.src, channels)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if got := mt.fastBody != nil; got != tc.fast {
			t.Errorf("%q: fast path %v, want %v", tc.src, got, tc.fast)
		}
		var buf bytes.Buffer
		subject, body, err := mt.render(context.Background(), &buf, vars)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		inst, err := mt.newInstance()
		if err != nil {
			t.Fatal(err)
		}
		inst.g.start(context.Background())
		var wantSubject string
		if inst.subject != nil {
			buf.Reset()
			inst.subject.Execute(&buf, vars)
			wantSubject = buf.String()
		}
		buf.Reset()
		inst.body.Execute(&buf, vars)
		if subject != wantSubject || body != buf.String() {
			t.Errorf("%q: render = %q, %q; Execute gives %q, %q", tc.src, subject, body, wantSubject, buf.String())
		}
	}
	// A missing variable still fails as Execute does.
	mt, _ := parseTemplate("t", "channel: sms\n---\nOla {{.first_name}}", channels)
	var buf bytes.Buffer
	if _, _, err := mt.render(context.Background(), &buf, map[string]string{}); err == nil {
		t.Error("render with a missing variable: no error")
	}
}
