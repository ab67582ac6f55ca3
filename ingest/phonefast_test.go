package ingest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestFastPhoneAgreesWithPhonenumbers checks that whenever the fast path
// decides, the complete parser decides the same.
func TestFastPhoneAgreesWithPhonenumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, region := range []string{"PT", "DE", "FR", "ES", "BR", "NL", "IT", "US", "GB", "AR", "MX", "CA", "JE", "IN", "CN", "JP", "AU", "ZA", "NG"} {
		f := newFastPhone(region)
		decided := 0
		for i := 0; i < 6000; i++ {
			var s string
			switch i % 4 {
			case 0:
				s = fmt.Sprintf("%d", rng.IntN(1_000_000_000))
			case 1:
				s = fmt.Sprintf("+%d %d", phonenumbers.GetCountryCodeForRegion(region), rng.Uint64N(100_000_000_000))
			case 2:
				s = fmt.Sprintf("%d%d", 1+rng.IntN(9), rng.IntN(1_000_000_000))
			default:
				s = fmt.Sprintf("(%d) %d-%d", rng.IntN(100), rng.IntN(10000), rng.IntN(10000))
			}
			got, ok := f.normalize(s)
			if !ok {
				continue
			}
			decided++
			num, err := phonenumbers.Parse(s, region)
			if err != nil || !phonenumbers.IsValidNumber(num) {
				t.Fatalf("%s: fast path accepts %q as %s, phonenumbers rejects it (%v)", region, s, got, err)
			}
			if want := phonenumbers.Format(num, phonenumbers.E164); got != want {
				t.Fatalf("%s: fast path gives %s for %q, phonenumbers %s", region, got, s, want)
			}
		}
		t.Logf("%s: fast path decided %d of 6000 (nil=%v)", region, decided, f == nil)
	}
}

func BenchmarkPhoneNormalize(b *testing.B) {
	pn := newPhoneNormalizer("PT")
	for i := 0; b.Loop(); i++ {
		if _, msg := pn.normalize(fmt.Sprintf("91%07d", i%10_000_000)); msg != "" {
			b.Fatal(msg)
		}
	}
}

// TestDigitMatcherAgreesWithRegexp runs every region's phone patterns, as
// fastPhone uses them, through the DFA and the regexp on random digit
// strings and on strings built to match.
func TestDigitMatcherAgreesWithRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, region := range []string{"PT", "DE", "FR", "ES", "NL", "IT", "US", "GB", "AR", "MX", "IN", "CN", "JP", "AU", "ZA", "NG"} {
		f := newFastPhone(region)
		if f == nil {
			continue
		}
		ms := []*digitMatcher{f.general}
		for _, m := range f.byLen {
			ms = append(ms, m)
		}
		for _, m := range ms {
			if m.prog == nil {
				t.Errorf("%s: pattern %s left to the regexp", region, m.re)
			}
			for i := 0; i < 20000; i++ {
				b := make([]byte, 1+rng.IntN(16))
				for j := range b {
					b[j] = byte('0' + rng.IntN(10))
				}
				s := string(b)
				if got, want := m.MatchString(s), m.re.MatchString(s); got != want {
					t.Fatalf("%s: %s on %q: DFA %v, regexp %v", region, m.re, s, got, want)
				}
			}
			if len(m.states) > maxDFAStates {
				t.Errorf("%s: %d states", region, len(m.states))
			}
		}
		// Valid numbers of the region, which random strings rarely are.
		for i := 0; i < 20000; i++ {
			s := fmt.Sprintf("%d%08d", 1+rng.IntN(99), rng.IntN(100_000_000))
			for _, m := range ms {
				if got, want := m.MatchString(s), m.re.MatchString(s); got != want {
					t.Fatalf("%s: %s on %q: DFA %v, regexp %v", region, m.re, s, got, want)
				}
			}
		}
	}
	m := newDigitMatcher(`9[1236]\d{7}`)
	for s, want := range map[string]bool{"912345678": true, "942345678": false, "91234567": false, "9123456789": false, "": false, "91234567a": false} {
		if got := m.MatchString(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
