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
