package ingest

import (
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// phoneMetadata is phonenumbers' metadata collection. The library caches it
// on first use without a lock, so it is fetched once, here, through a
// sync.OnceValues; it is never changed after.
var phoneMetadata = sync.OnceValues(phonenumbers.MetadataCollection)

// fastPhone checks the common, plain forms of a number of one region
// directly against the region's metadata: "912345678", "+351 912 345 678",
// "(91) 234-5678". It decides only when it can prove the number valid in the
// same way phonenumbers would (the same patterns and possible lengths, see
// getNumberTypeHelper there); anything else (leading zeros, national or
// international prefixes, other country codes, letters, extensions, regions
// that share a country code such as +1 or +44, invalid numbers) goes to the
// complete parser. TestFastPhoneAgreesWithPhonenumbers holds the two
// together.
type fastPhone struct {
	cc      string // country calling code, digits
	trunk   string // national (trunk) prefix: numbers starting with it go to the parser
	general *digitMatcher
	genLens map[int]bool // possible lengths of the general description
	// byLen holds, per national number length, one alternation of the
	// patterns of every number type possible at that length.
	byLen map[int]*digitMatcher
}

// newFastPhone prepares the fast path for a region, or returns nil when the
// region's rules need the complete parser. The region's patterns are
// compiled once per process (several milliseconds for some regions, paid
// before by every file and API request); each fastPhone gets its own
// matchers, which are not safe for concurrent use.
func newFastPhone(region string) *fastPhone {
	p, ok := fastPhones.Load(region)
	if !ok {
		p, _ = fastPhones.LoadOrStore(region, compileFastPhone(region))
	}
	return p.(*fastPhone).clone()
}

// fastPhones holds, by region, the compiled fast path newFastPhone clones (a
// nil *fastPhone for a region without one). It only grows by the regions of
// the configured partners.
var fastPhones sync.Map

// clone is f with matchers of its own.
func (f *fastPhone) clone() *fastPhone {
	if f == nil {
		return nil
	}
	c := *f
	c.general = f.general.clone()
	c.byLen = make(map[int]*digitMatcher, len(f.byLen))
	for l, m := range f.byLen {
		c.byLen[l] = m.clone()
	}
	return &c
}

func compileFastPhone(region string) *fastPhone {
	coll, err := phoneMetadata()
	if err != nil {
		return nil
	}
	var md *phonenumbers.PhoneMetadata
	for _, m := range coll.GetMetadata() {
		if m.GetId() == region {
			md = m
			break
		}
	}
	if md == nil || md.GetGeneralDesc().GetNationalNumberPattern() == "" {
		return nil
	}
	np, npp := md.GetNationalPrefix(), md.GetNationalPrefixForParsing()
	if npp != "" && npp != np {
		// A parsing rule richer than a plain trunk prefix (Brazil's carrier
		// codes, for one): only the parser applies it right.
		return nil
	}
	cc := int(md.GetCountryCode())
	if regions := phonenumbers.GetRegionCodesForCountryCode(cc); len(regions) == 0 || regions[0] != region || md.GetLeadingDigits() != "" {
		// A number valid here counts as this region's only when the region
		// is the first tried for its country code (US for +1, GB for +44).
		return nil
	}
	f := &fastPhone{cc: strconv.Itoa(cc), trunk: np, genLens: map[int]bool{}, byLen: map[int]*digitMatcher{}}
	gd := md.GetGeneralDesc()
	f.general = newDigitMatcher(gd.GetNationalNumberPattern())
	for _, l := range gd.GetPossibleLength() {
		f.genLens[int(l)] = true
	}
	types := []*phonenumbers.PhoneNumberDesc{md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(), md.GetVoip(),
		md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail(), md.GetFixedLine(), md.GetMobile()}
	for l := range f.genLens {
		var alts []string
		for _, d := range types {
			if d == nil || d.GetNationalNumberPattern() == "" {
				continue
			}
			if lens := d.GetPossibleLength(); len(lens) > 0 && !containsLen(lens, l) {
				continue
			}
			alts = append(alts, "(?:"+d.GetNationalNumberPattern()+")")
		}
		if len(alts) > 0 {
			f.byLen[l] = newDigitMatcher(strings.Join(alts, "|"))
		}
	}
	return f
}

func containsLen(lens []int32, l int) bool {
	for _, v := range lens {
		if int(v) == l {
			return true
		}
	}
	return false
}

// normalize returns the E.164 form and true when s is a plainly written,
// valid number of the region; false means "ask the complete parser".
func (f *fastPhone) normalize(s string) (string, bool) {
	if f == nil {
		return "", false
	}
	var buf [24]byte
	n := 0
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(buf) {
				return "", false
			}
			buf[n] = c
			n++
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	digits := buf[:n]
	if plus {
		if len(digits) <= len(f.cc) || string(digits[:len(f.cc)]) != f.cc {
			return "", false
		}
		digits = digits[len(f.cc):]
	}
	if len(digits) == 0 || digits[0] == '0' || !f.genLens[len(digits)] || (f.trunk != "" && strings.HasPrefix(string(digits), f.trunk)) {
		return "", false
	}
	re := f.byLen[len(digits)]
	nsn := string(digits)
	if re == nil || !f.general.MatchString(nsn) || !re.MatchString(nsn) {
		return "", false
	}
	return "+" + f.cc + nsn, true
}
