package homefs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// Contact files go into lists/<list>/: accepted there, refused directly in
// lists/ (nothing reads them there) and in a folder that cannot name a
// list, with the reason.
func TestUploadsIntoListFoldersOnly(t *testing.T) {
	h, _, _ := newHome(t, 0)
	if err := h.Mkdir("lists/customers"); err != nil {
		t.Fatal(err)
	}
	if err := upload(t, h, "lists/customers/a.csv", "email\na@example.com\n"); err != nil {
		t.Errorf("upload into lists/customers/: %v", err)
	}
	if err := upload(t, h, "inbox/x.csv", "x"); err != nil {
		t.Fatal(err)
	}
	if err := h.Rename("inbox/x.csv", "lists/customers/x.csv"); err != nil {
		t.Errorf("rename into lists/customers/: %v", err)
	}
	err := upload(t, h, "lists/a.csv", "email\na@example.com\n")
	var pe *PolicyError
	if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) || !strings.Contains(pe.Reason, "lists/<list>/") {
		t.Errorf("upload lists/a.csv: %v, want a refusal naming lists/<list>/", err)
	}
	if err := h.Mkdir("lists/-bad"); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "list's folder name") {
		t.Errorf("mkdir lists/-bad: %v", err)
	}
}
