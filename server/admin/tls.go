package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dropgate/dropgate/config"
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
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			host, _, _ := net.SplitHostPort(a.Listen)
			if err := generatePair(certFile, keyFile, host); err != nil {
				return nil, fmt.Errorf("admin: cannot generate a self-signed TLS certificate: %w", err)
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert: cannot load %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// generatePair makes a ten-year self-signed ECDSA pair for localhost, the
// loopback addresses and host (the listen address's host, when named).
func generatePair(certFile, keyFile, host string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dropgate admin"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if host != "" && ip == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o750); err != nil {
		return err
	}
	// Key first: a cert without its key would stop the next start.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
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
