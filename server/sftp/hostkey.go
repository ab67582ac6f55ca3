package sftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// hostKeyFile is the generated key's name under the data dir.
const hostKeyFile = "ssh_host_ed25519_key"

// loadOrCreateHostKey reads the configured host key, or the generated one
// under dataDir, generating it on first start. The generated key is an
// ed25519 key in OpenSSH PEM format (ssh-keygen reads it), mode 0600.
func loadOrCreateHostKey(configured, dataDir string) (ssh.Signer, string, error) {
	path := configured
	if path == "" {
		path = filepath.Join(dataDir, hostKeyFile)
	}
	pemBytes, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && configured == "" {
		pemBytes, err = generateHostKey(path)
	}
	if err != nil {
		return nil, path, fmt.Errorf("sftp.host_key: cannot read %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, path, fmt.Errorf("sftp.host_key: %s is not a usable private key: %w", path, err)
	}
	return signer, path, nil
}

func generateHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cannot generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "dropgate host key")
	if err != nil {
		return nil, fmt.Errorf("cannot encode host key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	// O_EXCL: two daemons starting at once must not overwrite each
	// other's key; the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return pemBytes, nil
}
