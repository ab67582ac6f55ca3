package ingest

import (
	"context"
	"fmt"
)

// TemplateChannel returns the channel a partner's stored template sends
// on and the recipient field that channel addresses ("email" or "phone"),
// so a workflow step knows which of its contact's addresses to use and
// whether quiet hours apply before it renders.
func (in *Ingester) TemplateChannel(ctx context.Context, partnerName, name string) (channel, recipientField string, err error) {
	p := in.partners[partnerName]
	if p == nil {
		return "", "", fmt.Errorf("%w %q", ErrUnknownPartner, partnerName)
	}
	t, err := in.template(ctx, p, name)
	if err != nil {
		return "", "", err
	}
	return t.channel, t.recipient, nil
}
