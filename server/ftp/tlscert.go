package ftp

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
)

// Names of the self-signed pair generated under the data dir.
const (
	generatedCert = "ftp_tls_cert.pem"
	generatedKey  = "ftp_tls_key.pem"
)

// loadOrCreateTLS returns a TLS 1.2+ config from the configured pair, or
// from a self-signed pair generated once under dataDir.
func loadOrCreateTLS(certFile, keyFile, dataDir, publicHost string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("ftp.tls_cert and ftp.tls_key: set both or neither")
	}
	if certFile == "" {
		certFile, keyFile = filepath.Join(dataDir, generatedCert), filepath.Join(dataDir, generatedKey)
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := generatePair(certFile, keyFile, publicHost); err != nil {
				return nil, fmt.Errorf("ftp: cannot generate a self-signed TLS certificate: %w", err)
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("ftp.tls_cert: cannot load %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// FTPS clients resume the control session's TLS on data
		// connections; the default session tickets allow it.
	}, nil
}

func generatePair(certFile, keyFile, publicHost string) error {
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
		Subject:               pkix.Name{CommonName: "dropgate FTPS"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if publicHost != "" {
		if ip := net.ParseIP(publicHost); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, publicHost)
		}
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
