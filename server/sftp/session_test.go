package sftp_test

import (
	"encoding/binary"
	"strings"
	"testing"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/auth/authtest"
	"github.com/dropgate/dropgate/server/internal/servertest"
	"github.com/dropgate/dropgate/server/sftp"
)

// TestSubsystemSendsExitStatusZeroAndAcceptsEnv: like OpenSSH's
// sftp-server, a session that ends cleanly reports exit status 0 (OpenSSH's
// client otherwise logs "Exit status -1"), and the env requests OpenSSH
// sends by default (LANG, LC_*) are accepted quietly, not logged as refused.
func TestSubsystemSendsExitStatusZeroAndAcceptsEnv(t *testing.T) {
	acme := authtest.NewPartner(t, "acme")
	logs := &servertest.Logs{}
	s := start(t, authtest.Config(t, acme), func(o *sftp.Options) { o.Logger = logs.Logger() })
	conn, err := dialSSH(t, s, clientConfig("acme", ssh.Password(acme.Password)))
	if err != nil {
		t.Fatal(err)
	}
	ch, reqs, err := conn.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	statuses := make(chan uint32, 1)
	go func() {
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) == 4 {
				statuses <- binary.BigEndian.Uint32(r.Payload)
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
		close(statuses)
	}()
	env := ssh.Marshal(struct{ Name, Value string }{"LANG", "C.UTF-8"})
	if ok, err := ch.SendRequest("env", true, env); err != nil || !ok {
		t.Errorf("env request: ok %v, err %v", ok, err)
	}
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"})); err != nil || !ok {
		t.Fatalf("subsystem request: ok %v, err %v", ok, err)
	}
	c, err := pkgsftp.NewClientPipe(ch, halfCloser{ch})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	// Closing the client sends EOF on the channel, as OpenSSH's client
	// does on "bye".
	c.Close()
	status, ok := <-statuses
	if !ok || status != 0 {
		t.Errorf("exit status %d (sent: %v), want 0\n%s", status, ok, logs)
	}
	if strings.Contains(logs.String(), "refused") {
		t.Errorf("a request was logged as refused:\n%s", logs.String())
	}
}

// halfCloser closes only the client's side of a channel, so the server's
// last requests (exit-status) still arrive.
type halfCloser struct{ ssh.Channel }

func (h halfCloser) Close() error { return h.CloseWrite() }
