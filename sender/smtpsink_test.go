package sender

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpSink is an in-process SMTP server on 127.0.0.1 that records what
// arrives. It offers STARTTLS with a self-signed certificate and AUTH PLAIN
// (only over TLS), and can be told to refuse recipients.
type smtpSink struct {
	addr   string
	port   int
	client *tls.Config // trusts the sink's certificate

	mu    sync.Mutex
	mails []sinkMail
	conns map[string]bool // remote addresses: STARTTLS starts a second session on a connection
	// reply, when set, may refuse a recipient with an SMTP error; n counts
	// the RCPTs to that address so far, starting at 1.
	reply func(rcpt string, n int) error
	rcpts map[string]int
}

// sinkMail is one accepted message.
type sinkMail struct {
	From string
	To   []string
	Data string
	TLS  bool
	User string
}

func newSMTPSink(t testing.TB) *smtpSink {
	t.Helper()
	cert, pool := selfSigned(t)
	k := &smtpSink{client: &tls.Config{RootCAs: pool}, rcpts: map[string]int{}, conns: map[string]bool{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		k.mu.Lock()
		k.conns[c.Conn().RemoteAddr().String()] = true
		k.mu.Unlock()
		return &sinkSession{sink: k, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	k.addr = l.Addr().String()
	k.port = l.Addr().(*net.TCPAddr).Port
	return k
}

func (k *smtpSink) Mails() []sinkMail {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]sinkMail(nil), k.mails...)
}

// Conns counts the connections the sink has seen.
func (k *smtpSink) Conns() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.conns)
}

func (k *smtpSink) setReply(f func(rcpt string, n int) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reply = f
}

type sinkSession struct {
	sink *smtpSink
	conn *smtp.Conn
	user string
	cur  sinkMail
}

var _ smtp.AuthSession = (*sinkSession)(nil)

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "apikey" || password != "s3cret" {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	_, tlsOn := s.conn.TLSConnectionState()
	s.cur = sinkMail{From: from, TLS: tlsOn, User: s.user}
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	k := s.sink
	k.mu.Lock()
	k.rcpts[to]++
	n, reply := k.rcpts[to], k.reply
	k.mu.Unlock()
	if reply != nil {
		if err := reply(to, n); err != nil {
			return err
		}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.sink.mu.Lock()
	s.sink.mails = append(s.sink.mails, s.cur)
	s.sink.mu.Unlock()
	return nil
}

func (s *sinkSession) Reset()        { s.cur = sinkMail{} }
func (s *sinkSession) Logout() error { return nil }

// header returns the first value of a header in a raw message.
func header(raw, name string) string {
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dropgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
