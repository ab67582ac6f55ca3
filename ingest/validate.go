package ingest

import (
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// checkEmail returns the address when s is one bare e-mail address
// ("ana@example.com", not "Ana <ana@example.com>"), else a message for the
// partner.
func checkEmail(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "the email is empty; every row needs an address to send to"
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", fmt.Sprintf("'%s' is not a valid email address; write one address like ana@example.com", s)
	}
	return s, ""
}

// phoneCacheLimit bounds the normalised-number cache of one file. Files often
// repeat numbers; a bound keeps memory flat for a file that does not.
const phoneCacheLimit = 10_000

// phoneNormalizer turns phone numbers as partners write them into E.164 for
// one default region. phonenumbers is thorough but slow (tens of
// microseconds a number), so results are cached by the raw text and plain
// numbers take a fast path (see phonefast.go). It is used by one goroutine.
type phoneNormalizer struct {
	region string
	cache  map[string]string
	fast   *fastPhone
}

func newPhoneNormalizer(region string) *phoneNormalizer {
	return &phoneNormalizer{region: region, cache: make(map[string]string), fast: newFastPhone(region)}
}

// phoneExamples holds, by region, a valid number of the region for error
// messages. Looked up on the first error rather than per normalizer: an API
// send makes a normalizer per request, and the lookup was a tenth of its
// CPU time (server/admin/BENCHMARKS.md).
var phoneExamples sync.Map

func phoneExample(region string) string {
	if ex, ok := phoneExamples.Load(region); ok {
		return ex.(string)
	}
	ex := ""
	if n := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE); n != nil {
		ex = phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
	}
	phoneExamples.Store(region, ex)
	return ex
}

// normalize returns the E.164 form of s, or a message for the partner.
// What the fast path decides is not cached: deciding again costs less than
// storing it.
func (pn *phoneNormalizer) normalize(s string) (string, string) {
	if v, ok := pn.fast.normalize(s); ok {
		return v, ""
	}
	if v, ok := pn.cache[s]; ok {
		if v == "" {
			return "", pn.invalid(s)
		}
		return v, ""
	}
	v := pn.lookup(s)
	if len(pn.cache) >= phoneCacheLimit {
		clear(pn.cache)
	}
	pn.cache[s] = v
	if v == "" {
		return "", pn.invalid(s)
	}
	return v, ""
}

func (pn *phoneNormalizer) lookup(s string) string {
	t := strings.TrimSpace(s)
	if t == "" {
		return ""
	}
	if v, ok := pn.fast.normalize(t); ok {
		return v
	}
	num, err := phonenumbers.Parse(t, pn.region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return ""
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

func (pn *phoneNormalizer) invalid(s string) string {
	if strings.TrimSpace(s) == "" {
		return "the phone number is empty; every row needs a number to send to"
	}
	msg := fmt.Sprintf("'%s' is not a valid phone number for region %s", s, pn.region)
	if ex := phoneExample(pn.region); ex != "" {
		msg += fmt.Sprintf("; check the digits, or write it in full with the country code, like %s", ex)
	}
	return msg
}

// sendAtLayout is the local form of send_at, read in the partner's zone.
const sendAtLayout = "2006-01-02 15:04"

// parseSendAt reads an RFC 3339 time, or "YYYY-MM-DD HH:MM" in loc.
func parseSendAt(s string, loc *time.Location) (time.Time, string) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, ""
	}
	if t, err := time.ParseInLocation(sendAtLayout, s, loc); err == nil {
		return t, ""
	}
	return time.Time{}, fmt.Sprintf("'%s' is not a time; write 2026-03-01 09:30 (%s time) or 2026-03-01T09:30:00+00:00", s, loc)
}
