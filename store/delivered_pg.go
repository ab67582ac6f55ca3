package store

import (
	"context"
	"fmt"
)

// markDeliveredPGSQLs are MarkDelivered's statements by number of rows.
var markDeliveredPGSQLs = func() map[int]string {
	out := map[int]string{}
	for n := 1; n <= completeChunk; n *= 2 {
		rows := `(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT))`
		if n > 1 {
			rows += ", " + valuesList(n-1, 4)
		}
		out[n] = `UPDATE messages SET provider_id = v.column3, sent_at = v.column4
		FROM (VALUES ` + rows + `) AS v
		WHERE messages.id = v.column1 AND messages.status = 'sending' AND messages.attempts = v.column2 AND messages.sent_at IS NULL`
	}
	return out
}()

// MarkDelivered records, on PostgreSQL, that the provider accepted the
// sent outcomes' messages (provider id and sent_at), leaving them
// "sending" and their jobs' tallies as they are: CompleteMessages does the
// rest later. It is one statement on rows only this node's claims hold,
// so a sender can afford it before each worker's next message; it makes
// the delivery visible to every node, whose expired-lease requeue settles
// such a message as sent instead of sending it again. An outcome whose
// claim is no longer current changes nothing.
func (s *Store) MarkDelivered(ctx context.Context, outs []Outcome) error {
	if !s.pg {
		return fmt.Errorf("cannot mark deliveries: only on PostgreSQL")
	}
	var sent []Outcome
	for _, o := range outs {
		if o.Kind == OutcomeSent {
			sent = append(sent, o)
		}
	}
	for _, n := range chunkSizes(len(sent), completeChunk) {
		if _, err := s.writer.ExecContext(ctx, markDeliveredPGSQLs[n], completeSentArgs(sent[:n])...); err != nil {
			return fmt.Errorf("cannot mark %d deliveries: %w", n, err)
		}
		sent = sent[n:]
	}
	return nil
}
