package config

import (
	"fmt"
	"slices"
	"strings"
)

// The SSH algorithm policy. The defaults are OpenSSH's own default set
// without SHA-1, as far as x/crypto/ssh implements it (it has neither
// sntrup761 nor UMAC): partners' stock clients must connect without
// reconfiguring anything. That includes AES-CTR with non-etm HMAC-SHA2,
// the only choice of clients built on libssh2 before 1.11 (curl and PHP's
// ssh2 on Debian 12, many integrations and devices), which offer neither
// AES-GCM nor *-etm MACs. Strict KEX (kex-strict-*-v00@openssh.com, the
// Terrapin fix) is always on in x/crypto/ssh. An admin may narrow each
// list, in any order of preference, but never step outside it: SHA-1, CBC,
// RC4 and 3DES are refused whatever the config says.
var (
	DefaultSSHKeyExchanges = []string{
		"mlkem768x25519-sha256", "curve25519-sha256",
		"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
		"diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha256",
	}
	DefaultSSHCiphers = []string{
		"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
		"aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
	}
	DefaultSSHMACs = []string{
		"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512",
	}

	AllowedSSHKeyExchanges = slices.Clone(DefaultSSHKeyExchanges)
	AllowedSSHCiphers      = slices.Clone(DefaultSSHCiphers)
	AllowedSSHMACs         = slices.Clone(DefaultSSHMACs)
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
