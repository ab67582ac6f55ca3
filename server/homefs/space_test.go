package homefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSpace is an injected watermark: room bytes left, or refused with why.
type fakeSpace struct {
	room int64
	why  string
}

func (s *fakeSpace) Room() (int64, error) {
	if s.why != "" {
		return 0, errors.New(s.why)
	}
	return s.room, nil
}

var _ Space = (*fakeSpace)(nil)

func newSpaceHome(t *testing.T, max int64, sp Space) (*FS, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "acme")
	h, err := Open(dir, Options{Partner: "acme", MaxUploadBytes: max, Space: sp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir
}

func TestUploadRefusedBeforeAnyByteBelowTheWatermark(t *testing.T) {
	h, dir := newSpaceHome(t, 0, &fakeSpace{why: "the server is out of storage space"})
	_, err := h.Create("/inbox/orders.csv")
	var se *StorageError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "out of storage space") {
		t.Fatalf("Create = %v, want a StorageError with the reason", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "inbox"))
	if len(entries) != 0 {
		t.Errorf("inbox holds %d entries after a refused upload", len(entries))
	}
}

func TestUploadFailsAtTheFirstWriteBeyondTheRoomLeft(t *testing.T) {
	h, dir := newSpaceHome(t, 0, &fakeSpace{room: 10})
	u, err := h.Create("/inbox/orders.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("0123456789")); err != nil {
		t.Fatalf("a write within the room failed: %v", err)
	}
	_, err = u.Write([]byte("x"))
	var se *StorageError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "storage space") {
		t.Fatalf("write beyond the room = %v, want a StorageError", err)
	}
	if err := u.Close(); err == nil {
		t.Error("an upload that ran out of room was kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "inbox", "orders.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused upload is in place: %v", err)
	}
}

func TestAllocateChecksSizeLimitAndRoom(t *testing.T) {
	h, _ := newSpaceHome(t, 1000, &fakeSpace{room: 500})
	if err := h.Allocate(400); err != nil {
		t.Errorf("Allocate(400) = %v", err)
	}
	if err := h.Allocate(600); !errors.As(err, new(*StorageError)) {
		t.Errorf("Allocate(600) beyond the room = %v, want a StorageError", err)
	}
	if err := h.Allocate(2000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Allocate(2000) beyond max_upload_bytes = %v, want ErrTooLarge", err)
	}
}
