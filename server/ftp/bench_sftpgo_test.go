package ftp_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sftpgoServer is SFTPGo serving FTP on loopback for the upload benchmark,
// in a process of its own whose CPU time is read from /proc.
type sftpgoServer struct {
	cmd            *exec.Cmd
	addr           string
	user, password string
	home           string
}

// startSFTPGo starts SFTPGo when DROPGATE_BENCH_SFTPGO names its binary,
// or returns nil. Its configuration is the defaults but for loopback
// bindings: FTP on a free port with a passive range of its own, the SFTP,
// HTTP and WebDAV services off, and the in-memory data provider holding one
// user whose home is a temp dir. SFTPGo needs its email templates at
// start: DROPGATE_BENCH_SFTPGO_SRC is the source tree it was built from
// (its templates/ and static/), by default the binary's folder.
func startSFTPGo(b *testing.B) *sftpgoServer {
	bin := os.Getenv("DROPGATE_BENCH_SFTPGO")
	if bin == "" {
		return nil
	}
	src := os.Getenv("DROPGATE_BENCH_SFTPGO_SRC")
	if src == "" {
		src = filepath.Dir(bin)
	}
	dir := b.TempDir()
	s := &sftpgoServer{user: "bench", password: "bench-password-1", home: filepath.Join(dir, "home")}
	if err := os.MkdirAll(s.home, 0o750); err != nil {
		b.Fatal(err)
	}
	port, passive := freePort(b), freePort(b)
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	users := map[string]any{
		"version": 17,
		"users": []map[string]any{{
			"id": 1, "username": s.user, "password": s.password, "status": 1,
			"home_dir": s.home, "permissions": map[string][]string{"/": {"*"}},
		}},
	}
	off := []map[string]any{{"port": 0}}
	cfg := map[string]any{
		"sftpd":     map[string]any{"bindings": off},
		"httpd":     map[string]any{"bindings": off, "templates_path": filepath.Join(src, "templates"), "static_files_path": filepath.Join(src, "static")},
		"webdavd":   map[string]any{"bindings": off},
		"telemetry": map[string]any{"bind_port": 0},
		"smtp":      map[string]any{"templates_path": filepath.Join(src, "templates")},
		"ftpd": map[string]any{
			"bindings":           []map[string]any{{"port": port, "address": "127.0.0.1"}},
			"passive_port_range": map[string]any{"start": passive, "end": passive},
		},
		"data_provider": map[string]any{"driver": "memory", "name": filepath.Join(dir, "users.json")},
	}
	for name, v := range map[string]any{"users.json": users, "sftpgo.json": cfg} {
		j, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), j, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	s.cmd = exec.Command(bin, "serve", "-c", dir, "--log-file-path", "", "--log-level", "warn")
	s.cmd.Dir = dir
	logFile, err := os.Create(filepath.Join(dir, "sftpgo.log"))
	if err != nil {
		b.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		logFile.Close()
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sftpgo.log"))
			b.Fatalf("SFTPGo is not listening on %s: %v\n%s", s.addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// url is ftp:// to name in the user's home.
func (s *sftpgoServer) url(name string) string {
	return "ftp://" + s.addr + "/" + name
}

// cpuSeconds is SFTPGo's user and system CPU time so far, from
// /proc/<pid>/stat (in clock ticks, 100 a second on Linux).
func (s *sftpgoServer) cpuSeconds(b *testing.B) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// freePort is a loopback TCP port free a moment ago.
func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
