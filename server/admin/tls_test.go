package admin

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
)

// With tls = "self-signed" the admin API serves HTTPS from a generated
// pair that a client can trust by its file, and the console's session
// cookie is Secure.
func TestAdminHTTPSWithAGeneratedPair(t *testing.T) {
	var cfg *config.Config
	addr, _ := startServer(t, func(c *config.Config, _ *Options) {
		c.DataDir = t.TempDir()
		c.Admin.TLS = "self-signed"
		cfg = c
	})
	pem, err := os.ReadFile(CertPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https healthz: %v", err)
	}
	resp.Body.Close()
	resp, err = c.PostForm("https://"+addr+"/login", url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("session cookie over HTTPS: %q", sc)
	}
}

func TestLoopbackAddressesAreRecognised(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true,
		"0.0.0.0:8080": false, ":8080": false, "192.0.2.1:80": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}
