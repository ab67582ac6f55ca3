package sender

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// A write the full disk cut short leaves no part of its line in the
// outbox: the retry's line would follow it, and neither would parse.
func TestOutboxLineCutShortByAFullDiskIsRemoved(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root to mount a tmpfs, and CI runs as root")
		}
		t.Skip("not root: cannot mount a small tmpfs")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	d := newOutboxDriver(filepath.Join(dir, "outbox"), "sms")
	defer d.Close()
	msg := func(id int64, body string) *store.Message {
		return &store.Message{ID: id, Key: fmt.Sprint("k-", id), Channel: "sms", Recipient: "+1", Body: body}
	}
	ctx := context.Background()
	if _, err := d.Send(ctx, msg(1, "first")); err != nil {
		t.Fatal(err)
	}
	// Fill the rest: the outbox's page has room left, no other page does.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	before, _ := os.Stat(d.path)
	if _, err := d.Send(ctx, msg(2, strings.Repeat("x", 6000))); err == nil {
		t.Fatal("a 6 KB line went into a full tmpfs")
	}
	if after, _ := os.Stat(d.path); after.Size() != before.Size() {
		t.Fatalf("outbox is %d bytes after the failed write, was %d", after.Size(), before.Size())
	}
	os.Remove(filler.Name())
	if _, err := d.Send(ctx, msg(2, strings.Repeat("x", 6000))); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var ids []int64
	for sc.Scan() {
		var r outboxRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("outbox line %q: %v", sc.Text(), err)
		}
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[1 2]" {
		t.Fatalf("outbox ids = %v, want [1 2]", ids)
	}
}
