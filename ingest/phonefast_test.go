package ingest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// libraryNormalize is what phoneNormalizer.normalize answered before any
// fast path: the library alone, and the same message for the partner.
func libraryNormalize(pn *phoneNormalizer, s string) (string, string) {
	t := strings.TrimSpace(s)
	if t != "" {
		if num, err := phonenumbers.Parse(t, pn.region); err == nil && phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164), ""
		}
	}
	return "", pn.invalid(s)
}

// phoneRegions is every region the library has metadata for, sorted.
func phoneRegions() []string {
	var rs []string
	for r := range phonenumbers.GetSupportedRegions() {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

// phoneSamples generates numbers of region (or of non-geographic calling
// code cc when region is "001") from the library's example numbers of each
// type: as they are, with other last digits, a digit short, a digit long,
// with another first digit, and behind the national prefix; each written
// in E.164, in the international and national formats, with 00 and with
// separators.
func phoneSamples(rng *rand.Rand, region string, cc int) []string {
	types := []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	var nsns []string
	for _, typ := range types {
		var ex *phonenumbers.PhoneNumber
		if region == "001" {
			ex = phonenumbers.GetExampleNumberForNonGeoEntity(cc)
		} else {
			ex = phonenumbers.GetExampleNumberForType(region, typ)
		}
		if ex == nil {
			continue
		}
		n := phonenumbers.GetNationalSignificantNumber(ex)
		nsns = append(nsns, n)
		if len(n) > 3 {
			b := []byte(n)
			for i := len(b) - 3; i < len(b); i++ {
				b[i] = byte('0' + rng.IntN(10))
			}
			nsns = append(nsns, string(b),
				n[:len(n)-1],                           // too short
				n+strconv.Itoa(rng.IntN(10)),           // too long
				strconv.Itoa(rng.IntN(10))+n[1:],       // another first digit
				n[:1]+strconv.Itoa(rng.IntN(10))+n[2:], // another second digit
			)
		}
		if region == "001" {
			break
		}
	}
	ccs := strconv.Itoa(cc)
	np := ""
	if region != "001" {
		np = phonenumbers.GetNddPrefixForRegion(region, true)
	}
	var out []string
	for _, n := range nsns {
		forms := []string{"+" + ccs + n, "+" + ccs + " " + n, "00" + ccs + n, "011 " + ccs + "-" + n, n, np + n, ccs + n}
		if len(n) > 4 {
			forms = append(forms, "+"+ccs+" ("+n[:2]+") "+n[2:4]+"."+n[4:], np+" "+n[:3]+"-"+n[3:])
		}
		if num, err := phonenumbers.Parse("+"+ccs+n, "ZZ"); err == nil {
			forms = append(forms, phonenumbers.Format(num, phonenumbers.INTERNATIONAL), phonenumbers.Format(num, phonenumbers.NATIONAL))
		}
		// Half of them, so that the library's time (most of the test's)
		// stays reasonable; the seed keeps the choice the same.
		for i, s := range forms {
			if i == 0 || rng.IntN(2) == 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

// checkPhoneAgrees fails t when the normalizer (fast path and library) and
// the library alone differ on s, or when the fast path accepts what the
// library rejects; it reports whether the library accepts s and whether
// the fast path decided.
func checkPhoneAgrees(t testing.TB, pn *phoneNormalizer, s string) (valid, decided bool) {
	t.Helper()
	want, wantMsg := libraryNormalize(pn, s)
	fast, decided := pn.fast.normalize(s)
	if decided && fast != want {
		t.Fatalf("region %s, %q: fast path gives %q, phonenumbers %q (%s)", pn.region, s, fast, want, wantMsg)
	}
	got, msg := pn.normalize(s)
	if got != want || msg != wantMsg {
		t.Fatalf("region %s, %q: normalize gives (%q, %q), phonenumbers (%q, %q)", pn.region, s, got, msg, want, wantMsg)
	}
	return want != "", decided
}

// TestFastPhoneAgreesWithPhonenumbers holds the fast path to the library on
// numbers of every region and non-geographic calling code the library has
// metadata for, valid and invalid, read by a partner of that region and of
// PT, and some by partners of DE and US (011 to dial out).
func TestFastPhoneAgreesWithPhonenumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	partners := map[string]*phoneNormalizer{}
	normalizer := func(region string) *phoneNormalizer {
		if partners[region] == nil {
			partners[region] = newPhoneNormalizer(region)
		}
		return partners[region]
	}
	total, decided, valid := 0, 0, 0
	try := func(pn *phoneNormalizer, s string) {
		v, d := checkPhoneAgrees(t, pn, s)
		total++
		if v {
			valid++
		}
		if d {
			decided++
		}
	}
	check := func(region string, cc int) {
		for i, s := range phoneSamples(rng, region, cc) {
			readers := []string{"PT"}
			if region != "001" {
				readers = append(readers, region)
			}
			if i%4 == 0 {
				readers = append(readers, "DE", "US")
			}
			for _, p := range readers {
				try(normalizer(p), s)
			}
		}
	}
	for i, region := range phoneRegions() {
		if testing.Short() && i%4 != 0 {
			continue // -short: a quarter of the regions
		}
		check(region, phonenumbers.GetCountryCodeForRegion(region))
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		check("001", cc)
	}
	// Random digits, for what examples do not reach.
	for _, region := range []string{"PT", "DE", "FR", "ES", "BR", "NL", "IT", "US", "GB", "AR", "MX", "CA", "JE", "IN", "CN", "JP", "AU", "ZA", "NG", "PL"} {
		pn := normalizer(region)
		for i := range 2000 {
			var s string
			switch i % 4 {
			case 0:
				s = fmt.Sprintf("%d", rng.IntN(1_000_000_000))
			case 1:
				s = fmt.Sprintf("+%d %d", phonenumbers.GetCountryCodeForRegion(region), rng.Uint64N(100_000_000_000))
			case 2:
				s = fmt.Sprintf("0%d%d", 1+rng.IntN(9), rng.IntN(1_000_000_000))
			default:
				s = fmt.Sprintf("+%d (%d) %d-%d", 1+rng.IntN(999), rng.IntN(100), rng.IntN(10000), rng.IntN(10000))
			}
			try(pn, s)
		}
	}
	t.Logf("%d numbers: %d valid, the fast path decided %d", total, valid, decided)
}

// TestFastPhoneDecidesInternationalAndNationalNumbers checks what the fast
// path is for: every valid example number of every calling code, written
// in E.164 (plain, spaced, with 00 where the partner dials out with 00),
// and every region's numbers written nationally by a partner of the
// region, are decided without the library.
func TestFastPhoneDecidesInternationalAndNationalNumbers(t *testing.T) {
	pt := newFastPhone("PT")
	missed := 0
	for _, region := range phoneRegions() {
		home := newFastPhone(region)
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE} {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil || !phonenumbers.IsValidNumber(ex) {
				continue
			}
			want := phonenumbers.Format(ex, phonenumbers.E164)
			nsn := phonenumbers.GetNationalSignificantNumber(ex)
			for _, s := range []string{want, "+" + cc + " " + nsn, "00" + cc + nsn} {
				if got, ok := pt.normalize(s); !ok || got != want {
					t.Errorf("PT partner, %s %v %q: fast path (%q, %v), want %s", region, typ, s, got, ok, want)
					missed++
				}
			}
			national := phonenumbers.Format(ex, phonenumbers.NATIONAL)
			if num, err := phonenumbers.Parse(national, region); err != nil || !phonenumbers.IsValidNumber(num) || phonenumbers.Format(num, phonenumbers.E164) != want {
				continue // the library itself does not read its national format back (AR)
			}
			if strings.Trim(national, "0123456789 -.()") == "" {
				if got, ok := home.normalize(national); !ok || got != want {
					t.Errorf("%s partner, %s %v %q: fast path (%q, %v), want %s", region, region, typ, national, got, ok, want)
					missed++
				}
			}
		}
		if missed > 20 {
			t.Fatal("too many misses")
		}
	}
}

// TestFastPhoneStaysWithinItsStateBudget runs a fastPhone with a tiny
// budget over every region's numbers: it keeps agreeing with the library,
// and never holds more states than the budget allows (plus each matcher's
// start state).
func TestFastPhoneStaysWithinItsStateBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pn := newPhoneNormalizer("DE")
	pn.fast.limit = 300
	pn.fast.reset()
	resets := 0
	for i, region := range phoneRegions() {
		if i%3 != 0 {
			continue
		}
		for _, s := range phoneSamples(rng, region, phonenumbers.GetCountryCodeForRegion(region)) {
			before := pn.fast.budget.left
			checkPhoneAgrees(t, pn, s)
			if pn.fast.budget.left > before {
				resets++
			}
			if n := pn.fast.states(); n > 300+pn.fast.matchers() {
				t.Fatalf("%d states with a budget of 300", n)
			}
		}
	}
	if resets == 0 {
		t.Fatal("the budget was never spent")
	}
	t.Logf("%d resets", resets)
}

// states counts the DFA states f holds, and matchers its matchers.
func (f *fastPhone) states() int {
	n := 0
	f.eachMatcher(func(m *digitMatcher) { n += len(m.states) - 1 })
	return n
}

func (f *fastPhone) matchers() int {
	n := 0
	f.eachMatcher(func(*digitMatcher) { n++ })
	return n
}

func (f *fastPhone) eachMatcher(fn func(*digitMatcher)) {
	visit := func(m *regionMatch) {
		if m == nil {
			return
		}
		for _, d := range append([]*digitMatcher{m.general, m.leading, m.nppStart, m.iddStart}, m.byLen[:]...) {
			if d != nil {
				fn(d)
			}
		}
	}
	visit(f.home)
	for _, c := range f.ccs {
		if c != nil {
			for _, m := range c.regions {
				visit(m)
			}
		}
	}
}

// FuzzFastPhoneAgreesWithPhonenumbers: whatever the text and the partner's
// region, the normalizer answers what the library alone answers (the same
// E.164, or the same message), and the fast path never accepts what the
// library rejects.
func FuzzFastPhoneAgreesWithPhonenumbers(f *testing.F) {
	regions := phoneRegions()
	rng := rand.New(rand.NewPCG(7, 8))
	for i, region := range []string{"PT", "DE", "FR", "IT", "ES", "PL", "NL", "BR", "AU", "NG", "US", "GB", "AR", "MX"} {
		idx := uint16(slices.Index(regions, region))
		for j, s := range phoneSamples(rng, region, phonenumbers.GetCountryCodeForRegion(region)) {
			if j%5 == i%5 {
				f.Add(s, idx)
			}
		}
	}
	partners := map[string]*phoneNormalizer{}
	f.Fuzz(func(t *testing.T, s string, idx uint16) {
		region := regions[int(idx)%len(regions)]
		pn := partners[region]
		if pn == nil {
			pn = newPhoneNormalizer(region)
			partners[region] = pn
		}
		checkPhoneAgrees(t, pn, s)
	})
}

// BenchmarkPhoneNormalize times the normalizer of a PT partner (a DE one
// for the trunk prefix) on numbers of one format each, and on the numbers
// of BenchmarkIngest1M's mixed and national files, prepared beforehand.
func BenchmarkPhoneNormalize(b *testing.B) {
	for _, file := range []string{"mixed-file", "national-file"} {
		in := make([]string, 100_000)
		for i := range in {
			if in[i] = fmt.Sprintf("91%07d", i); file == "mixed-file" {
				in[i] = benchPhone(i)
			}
		}
		b.Run(file, func(b *testing.B) {
			pn := newPhoneNormalizer("PT")
			for i := 0; b.Loop(); i++ {
				if _, msg := pn.normalize(in[i%len(in)]); msg != "" {
					b.Fatal(msg)
				}
			}
		})
	}
	for _, c := range []struct {
		name   string
		region string
		format string
	}{
		{"PT-national", "PT", "91%07d"},
		{"PT-E164", "PT", "+35191%07d"},
		{"DE-E164-spaced", "PT", "+49 151 1%07d"},
		{"DE-national-trunk", "DE", "0151 1%07d"},
		{"BR-E164", "PT", "+55119%08d"},
	} {
		b.Run(c.name, func(b *testing.B) {
			pn := newPhoneNormalizer(c.region)
			for i := 0; b.Loop(); i++ {
				if _, msg := pn.normalize(fmt.Sprintf(c.format, i%10_000_000)); msg != "" {
					b.Fatal(msg)
				}
			}
		})
	}
}

// TestDigitMatcherAgreesWithRegexp runs every region's phone patterns, as
// the fast path uses them, through the DFA and the regexp on random digit
// strings and on strings built from the region's example numbers.
func TestDigitMatcherAgreesWithRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, region := range phoneRegions() {
		r := rulesFor(phonenumbers.GetCountryCodeForRegion(region), region)
		if r == nil {
			continue
		}
		ps := []*digitPattern{r.general, r.leading, r.nppStart, r.iddStart}
		ps = append(ps, r.byLen[:]...)
		var examples []string
		for _, s := range phoneSamples(rng, region, r.cc) {
			if strings.Trim(s, "0123456789") == "" {
				examples = append(examples, s)
			}
		}
		budget := &dfaBudget{left: maxDFAStates}
		for _, p := range ps {
			if p == nil {
				continue
			}
			if p.prog == nil {
				t.Errorf("%s: pattern %s left to the regexp", region, p.re())
			}
			m := p.matcher(budget)
			try := func(s string) {
				if got, want := m.MatchString(s), p.re().MatchString(s); got != want {
					t.Fatalf("%s: %s on %q: DFA %v, regexp %v", region, p.re(), s, got, want)
				}
			}
			for range 2000 {
				b := make([]byte, 1+rng.IntN(16))
				for j := range b {
					b[j] = byte('0' + rng.IntN(10))
				}
				try(string(b))
			}
			for _, s := range examples {
				try(s)
			}
		}
		if budget.left <= 0 {
			t.Errorf("%s: the DFAs outgrew %d states", region, maxDFAStates)
		}
	}
	m := newDigitMatcher(`9[1236]\d{7}`)
	for s, want := range map[string]bool{"912345678": true, "942345678": false, "91234567": false, "9123456789": false, "": false, "91234567a": false} {
		if got := m.MatchString(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
