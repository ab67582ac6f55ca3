package admin

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/internal/selfsigned"
)

// Names of the self-signed pair generated under the data dir when
// [admin] tls = "self-signed".
const (
	generatedCert = "admin_tls_cert.pem"
	generatedKey  = "admin_tls_key.pem"
)

// CertPath is the certificate the admin API serves with TLS: the
// configured one, or the generated one. The CLI trusts it.
func CertPath(cfg *config.Config) string {
	if cfg.Admin.TLSCert != "" {
		return cfg.Admin.TLSCert
	}
	return filepath.Join(cfg.DataDir, generatedCert)
}

// loadTLS returns the admin API's TLS config, or nil when TLS is off.
func loadTLS(cfg *config.Config) (*tls.Config, error) {
	a := cfg.Admin
	if a.TLS == "" || a.TLS == "off" {
		return nil, nil
	}
	certFile, keyFile := a.TLSCert, a.TLSKey
	if certFile == "" {
		certFile, keyFile = filepath.Join(cfg.DataDir, generatedCert), filepath.Join(cfg.DataDir, generatedKey)
		host, _, _ := net.SplitHostPort(a.Listen)
		if err := selfsigned.Ensure(certFile, keyFile, "dropgate admin", host); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert: cannot load %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// isLoopback reports whether a listen address only accepts local
// connections.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
