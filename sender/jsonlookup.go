package sender

import (
	"encoding/json"
	"fmt"
)

// JSONString returns the string or number that the RFC 6901 pointer ptr
// names in the JSON document doc, read as id_path reads a provider's
// answer. Inbound routes read a provider's requests with it.
func JSONString(doc []byte, ptr string) (string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return "", fmt.Errorf("the body is not JSON: %w", err)
	}
	at, err := jsonPointer(v, ptr)
	if err != nil {
		return "", err
	}
	s, err := jsonScalar(at)
	if err != nil {
		return "", fmt.Errorf("JSON pointer %q: %w", ptr, err)
	}
	return s, nil
}
