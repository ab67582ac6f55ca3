package admin

import (
	"context"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// TestAPIListsQuarantinedFilesWithTheirReason: an upload quarantined by
// ingest (not finished twice) is found with ?status=quarantined, with the
// reason the partner's report gives.
func TestAPIListsQuarantinedFilesWithTheirReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.QuarantineFile(ctx, store.File{Partner: "acme", Name: "inbox/big.csv", SHA256: "x"},
		"this file was not processed: dropgate stopped or failed while reading it 2 times"); err != nil {
		t.Fatal(err)
	}
	f.store.CreateFile(ctx, store.File{Partner: "acme", Name: "inbox/other.csv", SHA256: "y"})

	code, body := f.do(t, "GET", "/api/v1/files?status=quarantined", adminToken)
	files, _ := body["files"].([]any)
	if code != 200 || len(files) != 1 {
		t.Fatalf("%d %v", code, body)
	}
	file := files[0].(map[string]any)
	errs, _ := file["errors"].([]any)
	if file["name"] != "inbox/big.csv" || file["status"] != "quarantined" || len(errs) != 1 ||
		!strings.Contains(errs[0].(map[string]any)["error"].(string), "2 times") {
		t.Errorf("file = %v", file)
	}
}
