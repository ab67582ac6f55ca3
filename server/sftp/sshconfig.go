package sftp

import (
	"net"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/auth"
)

// permPartner is the Permissions extension that carries the authenticated
// partner's name from the auth callbacks to the session.
const permPartner = "dropgate-partner"

// sshConfig builds the server side of the handshake. The partner's name is
// carried in ssh.Permissions, never remembered from the callback: a
// PublicKeyCallback call only means the client offered the key, not that
// it holds it; x/crypto/ssh returns the permissions of the key whose
// signature it verified.
//
// The algorithms are always set from [sftp], which validation keeps within
// config's allowed sets: x/crypto/ssh's own defaults still include SHA-1
// key exchanges and MACs.
func sshConfig(signer ssh.Signer, authn *auth.Authenticator, sc config.SFTPConfig) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{
			KeyExchanges: sc.KeyExchanges,
			Ciphers:      sc.Ciphers,
			MACs:         sc.MACs,
		},
		MaxAuthTries:  sc.MaxAuthTries,
		ServerVersion: "SSH-2.0-dropgate",
		PasswordCallback: func(meta ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			name, err := authn.CheckPassword("sftp", meta.User(), string(pass), meta.RemoteAddr())
			if err != nil {
				return nil, err
			}
			return partnerPermissions(name, "password"), nil
		},
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			name, err := authn.CheckPublicKey(meta.User(), key, meta.RemoteAddr())
			if err != nil {
				return nil, err
			}
			perms := partnerPermissions(name, "publickey")
			perms.Extensions["key"] = ssh.FingerprintSHA256(key)
			return perms, nil
		},
	}
	cfg.AddHostKey(signer)
	return cfg
}

func partnerPermissions(name, method string) *ssh.Permissions {
	return &ssh.Permissions{Extensions: map[string]string{permPartner: name, "method": method}}
}

// remoteOf is a ConnMetadata's remote address, for logs.
func remoteOf(c net.Conn) string {
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		return host
	}
	return c.RemoteAddr().String()
}
