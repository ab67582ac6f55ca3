package config

import (
	"fmt"
	"slices"
	"strings"
)

// The SSH algorithm policy. The defaults are the modern set DESIGN.md
// names: hybrid post-quantum and elliptic-curve key exchanges, AEAD
// ciphers and encrypt-then-MAC. An admin may widen the lists, per server,
// but only within the allowed sets below: they add what OpenSSH itself
// still enables by default and Mozilla's "modern" OpenSSH guideline keeps
// (AES-CTR with HMAC-SHA2), which clients built on libssh2 before 1.11
// (curl and PHP on Debian 12, many embedded devices) need because they
// offer neither AES-GCM nor *-etm MACs. SHA-1, CBC, RC4 and 3DES are never
// accepted, whatever the config says.
var (
	DefaultSSHKeyExchanges = []string{"mlkem768x25519-sha256", "curve25519-sha256", "ecdh-sha2-nistp256"}
	DefaultSSHCiphers      = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}
	DefaultSSHMACs         = []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"}

	AllowedSSHKeyExchanges = append(slices.Clone(DefaultSSHKeyExchanges),
		"ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512")
	AllowedSSHCiphers = append(slices.Clone(DefaultSSHCiphers), "aes128-ctr", "aes192-ctr", "aes256-ctr")
	AllowedSSHMACs    = append(slices.Clone(DefaultSSHMACs), "hmac-sha2-256", "hmac-sha2-512")
)

// checkSSHAlgorithms reports every listed algorithm outside its allowed
// set, and an empty list (a server that can agree on nothing).
func checkSSHAlgorithms(bad func(field, format string, args ...any), field string, got, allowed []string) {
	if len(got) == 0 {
		bad(field, "must list at least one of %s", strings.Join(allowed, ", "))
		return
	}
	for i, name := range got {
		if !slices.Contains(allowed, name) {
			bad(fmt.Sprintf("%s[%d]", field, i), "%q is not allowed (allowed: %s)", name, strings.Join(allowed, ", "))
		}
	}
}
