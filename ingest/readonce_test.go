package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// readChars is what the calling thread has read through read(2) and
// pread(2) so far (/proc/thread-self/io rchar), page cache hits included.
// The caller locks its goroutine to the thread: what it reads itself is
// counted, and the database's background writers are not.
func readChars(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/thread-self/io")
	if err != nil {
		t.Skip("no /proc/self/io:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}

// bigList is a list of about size bytes in rows of ~2 KB, whose note
// column no template uses: few rows, so the database reads little.
func bigList(header string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	pad := strings.Repeat("x", 2000)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "91%07d,Ana,%d,%s\n", i%10_000_000, i, pad)
	}
	return b.Bytes()
}

// A file is read from disk once: hashed (for the duplicate check) by the
// read that ingests it, not in a pass of its own. The process reads less
// than 1.5 times the file's size (the file itself, a few database pages),
// where hashing first read it twice.
func TestIngestReadsAFileOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "welcome", welcomeSMS)
	cases := []struct {
		name, header, status string
	}{
		{"queued.csv", "phone,first_name,order_id,note\n", store.FileQueued},
		// Rejected at its header: the read stops there, and the rest is
		// hashed, for the record, without being read again.
		{"badheader.csv", "phone,first_name,order_id,phone,note\n", store.FileRejected},
	}
	for _, c := range cases {
		data := bigList(c.header, 8<<20)
		e.write("acme", "inbox/welcome/"+c.name, data)
		runtime.LockOSThread()
		before := readChars(t)
		e.in.process(context.Background(), workItem{partner: "acme", rel: "inbox/welcome/" + c.name})
		read := readChars(t) - before
		runtime.UnlockOSThread()
		f := e.lastFile("acme")
		if f.Name != "inbox/welcome/"+c.name || f.Status != c.status {
			t.Fatalf("%s: %s %s (%s), want %s", c.name, f.Name, f.Status, f.Error, c.status)
		}
		if f.SHA256 != sha256Hex(data) || f.Size != int64(len(data)) {
			t.Errorf("%s: recorded sha %s size %d, want %s %d", c.name, f.SHA256, f.Size, sha256Hex(data), len(data))
		}
		t.Logf("%s: %d bytes read for a file of %d (%.2fx)", c.name, read, len(data), float64(read)/float64(len(data)))
		if read < int64(len(data)) || read > int64(len(data))*3/2 {
			t.Errorf("%s: %d bytes read for a file of %d bytes; want it read once", c.name, read, len(data))
		}
	}
	// The same content again is still a duplicate, found at the end of
	// its one read, before anything is committed.
	data := bigList("phone,first_name,order_id,note\n", 8<<20)
	e.ingest("acme", "inbox/welcome/again.csv", data)
	if f := e.lastFile("acme"); f.Status != store.FileRejected || !strings.Contains(f.Error, "same content as inbox/welcome/queued.csv") {
		t.Errorf("again.csv: %s (%s), want rejected as a duplicate", f.Status, f.Error)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// BenchmarkIngestReadsOnce ingests one large file and reports the bytes
// the ingesting thread read per byte of the file (1 = read once):
//
//	go test ./ingest -run '^$' -bench IngestReadsOnce -benchtime 1x
//
// DROPGATE_BENCH_BYTES sets the file's size (default 1 GiB). Rows are
// ~2 KB with a column no template uses, so what the database reads is
// small beside the file.
func BenchmarkIngestReadsOnce(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("DROPGATE_BENCH_BYTES"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	for range b.N {
		b.StopTimer()
		cfg := config.Default()
		cfg.DataDir = b.TempDir()
		cfg.Partners = []config.Partner{{Name: "acme", Region: "PT", Timezone: "Europe/Lisbon", Channels: []string{"sms"}}}
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(context.Background(), cfg.DBPath())
		if err != nil {
			b.Fatal(err)
		}
		in, err := New(Options{Config: cfg, Store: st, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		home := cfg.PartnerHome("acme")
		os.WriteFile(filepath.Join(home, "templates", "welcome.tmpl"), []byte(welcomeSMS), 0o644)
		in.process(context.Background(), workItem{partner: "acme", rel: "templates/welcome.tmpl"})
		path := filepath.Join(home, "inbox", "welcome", "big.csv")
		os.MkdirAll(filepath.Dir(path), 0o755)
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		w.WriteString("phone,first_name,order_id,note\n")
		pad := strings.Repeat("x", 2000)
		var n int64
		for i := 0; n < size; i++ {
			m, _ := fmt.Fprintf(w, "91%07d,Ana,%d,%s\n", i%10_000_000, i, pad)
			n += int64(m)
		}
		if err := errors.Join(w.Flush(), f.Close()); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		b.StartTimer()
		runtime.LockOSThread()
		before := readChars(b)
		in.process(context.Background(), workItem{partner: "acme", rel: "inbox/welcome/big.csv"})
		read := readChars(b) - before
		runtime.UnlockOSThread()
		b.StopTimer()
		if f, err := st.LastFileNamed(context.Background(), "acme", "inbox/welcome/big.csv"); err != nil || f.Status != store.FileQueued {
			b.Fatalf("%s (%s) %v", f.Status, f.Error, err)
		}
		in.watcher.Close()
		st.Close()
		b.ReportMetric(float64(fi.Size())/1e6, "file-MB")
		b.ReportMetric(float64(read)/1e6, "read-MB")
		b.ReportMetric(float64(read)/float64(fi.Size()), "reads/file")
	}
}
