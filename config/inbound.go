package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dropgate/dropgate/unsubscribe"
)

// Inbound is an http channel's route for the messages its provider
// receives (SMS replies): POST /api/v1/inbound/<channel>. A reply that is
// an opt-out keyword suppresses its sender's number.
type Inbound struct {
	// Secret authenticates the provider's requests (Authorization: Bearer
	// <secret>, or Basic with the secret as password). "" generates one
	// into <data_dir>/secrets/inbound-<channel> at first start.
	Secret string `toml:"secret"`
	// FromPath and TextPath are JSON pointers to the sender's number and
	// the text in the provider's JSON body.
	FromPath string `toml:"from_path"`
	TextPath string `toml:"text_path"`
	// Keywords are the texts that opt out, compared trimmed and without
	// regard to case; empty means DefaultOptOutKeywords.
	Keywords []string `toml:"keywords"`
	// Partner, when set, is the one partner the channel's replies opt out
	// of; "" means every partner that uses the channel (a shared sender
	// number: the person opted out of that number).
	Partner string `toml:"partner"`
}

// DefaultOptOutKeywords are the opt-out words carriers and the CTIA
// handbook require a US short code to honour.
var DefaultOptOutKeywords = []string{"STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}

// OptOutKeywords returns the keywords, or the defaults.
func (in *Inbound) OptOutKeywords() []string {
	if len(in.Keywords) > 0 {
		return in.Keywords
	}
	return DefaultOptOutKeywords
}

// InboundPartners returns the partners a channel's replies opt out of.
func (c *Config) InboundPartners(ch *Channel) []string {
	if ch.Inbound == nil {
		return nil
	}
	if ch.Inbound.Partner != "" {
		return []string{ch.Inbound.Partner}
	}
	var out []string
	for _, p := range c.Partners {
		if slices.Contains(p.Channels, ch.Name) {
			out = append(out, p.Name)
		}
	}
	return out
}

// validateUnsubscribe checks [admin] public_url and the channels' inbound
// tables.
func (c *Config) validateUnsubscribe(bad func(field, format string, args ...any)) {
	if c.Admin.PublicURL != "" {
		if err := unsubscribe.CheckPublicURL(c.Admin.PublicURL); err != nil {
			bad("admin.public_url", "%v", err)
		}
	}
	for i := range c.Channels {
		ch := &c.Channels[i]
		in := ch.Inbound
		if in == nil {
			continue
		}
		f := fmt.Sprintf("channel[%d].inbound", i)
		if ch.Type != ChannelHTTP {
			bad(f, "only an http channel takes inbound messages; channel %q is %s", ch.Name, ch.Type)
		}
		if ch.RecipientField() != "phone" {
			bad(f, "inbound opt-outs are for phone channels; channel %q sends to %s", ch.Name, ch.RecipientField())
		}
		if in.Secret != "" && len(in.Secret) < 16 {
			bad(f+".secret", "must be at least 16 characters (or leave it out to have one generated)")
		}
		for _, p := range []struct{ field, v string }{{"from_path", in.FromPath}, {"text_path", in.TextPath}} {
			if p.v == "" {
				bad(f+"."+p.field, "is required: the JSON pointer to it in the provider's request, such as \"/from\"")
			} else if !strings.HasPrefix(p.v, "/") {
				bad(f+"."+p.field, "%q is not a JSON pointer (it starts with /)", p.v)
			}
		}
		for j, k := range in.Keywords {
			if strings.TrimSpace(k) == "" {
				bad(fmt.Sprintf("%s.keywords[%d]", f, j), "must not be empty")
			}
		}
		if in.Partner != "" {
			p, ok := c.Partner(in.Partner)
			if !ok {
				bad(f+".partner", "unknown partner %q", in.Partner)
			} else if !slices.Contains(p.Channels, ch.Name) {
				bad(f+".partner", "partner %q does not use channel %q", in.Partner, ch.Name)
			}
		}
	}
}
