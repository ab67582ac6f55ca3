package selfsigned

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureMakesAPairOnceForTheNamedHost(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "sub", "c.pem"), filepath.Join(dir, "sub", "k.pem")
	if err := Ensure(cert, key, "dropgate test", "gate.example.com"); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(cert)
	if err := Ensure(cert, key, "dropgate test", "other.example.com"); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(cert); !bytes.Equal(first, second) {
		t.Fatal("a second Ensure replaced the existing certificate")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"gate.example.com", "localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if info, _ := os.Stat(key); info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", info.Mode().Perm())
	}
}
