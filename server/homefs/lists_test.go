package homefs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// Contact lists are not built: a file put into lists/ would never be read,
// so uploads and renames into it are refused with the reason, while
// suppress/ takes files.
func TestUploadIntoListsIsRefusedWithReason(t *testing.T) {
	h, _, _ := newHome(t, 0)
	if err := h.Mkdir("lists/customers"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lists/customers/a.csv", "lists/a.csv"} {
		err := upload(t, h, name, "email\na@example.com\n")
		var pe *PolicyError
		if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) || !strings.Contains(pe.Reason, "does not read yet") {
			t.Errorf("upload %s: %v, want a refusal saying lists are not read", name, err)
		}
	}
	if err := upload(t, h, "inbox/x.csv", "x"); err != nil {
		t.Fatal(err)
	}
	if err := h.Rename("inbox/x.csv", "lists/customers/x.csv"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("rename into lists/: %v", err)
	}
	if err := upload(t, h, "suppress/bounces.csv", "email\na@example.com\n"); err != nil {
		t.Errorf("upload into suppress/: %v", err)
	}
}
