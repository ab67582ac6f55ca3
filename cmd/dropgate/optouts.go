package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/unsubscribe"
)

// unsubscribeKeyFile holds the key of the one-click unsubscribe links in
// <data_dir>/secrets. Losing it breaks the links of every message sent so
// far, so it is made once and kept like the other secrets.
const unsubscribeKeyFile = "unsubscribe-key"

// inboundSecretFile is the file of a channel's generated inbound secret.
func inboundSecretFile(channel string) string { return "inbound-" + channel }

// setupOptOuts loads (or makes) the unsubscribe key when [admin]
// public_url is set, and returns the links made with it; nil without
// public_url. Every inbound table without a secret gets the one kept in
// <data_dir>/secrets/inbound-<channel>, made at first start.
func setupOptOuts(cfg *config.Config, logger *slog.Logger) (*unsubscribe.Links, error) {
	for i := range cfg.Channels {
		ch := &cfg.Channels[i]
		if ch.Inbound == nil || ch.Inbound.Secret != "" {
			continue
		}
		secret, fresh, err := loadOrCreateSecret(cfg.SecretsDir(), inboundSecretFile(ch.Name))
		if err != nil {
			return nil, fmt.Errorf("channel %s inbound secret: %w", ch.Name, err)
		}
		ch.Inbound.Secret = secret
		if fresh {
			logger.Info("generated the inbound secret of a channel; give it to the provider", "channel", ch.Name,
				"file", filepath.Join(cfg.SecretsDir(), inboundSecretFile(ch.Name)))
		}
	}
	if cfg.Admin.PublicURL == "" {
		return nil, nil
	}
	key, _, err := loadOrCreateSecret(cfg.SecretsDir(), unsubscribeKeyFile)
	if err != nil {
		return nil, fmt.Errorf("unsubscribe key: %w", err)
	}
	links, err := unsubscribe.New([]byte(key), cfg.Admin.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("admin.public_url: %w", err)
	}
	return links, nil
}
