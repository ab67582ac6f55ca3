package ftp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dropgate/dropgate/server/internal/selfsigned"
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
		if err := selfsigned.Ensure(certFile, keyFile, "dropgate FTPS", publicHost); err != nil {
			return nil, fmt.Errorf("ftp: %w", err)
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
