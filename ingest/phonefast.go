package ingest

import (
	"bytes"

	"github.com/nyaruka/phonenumbers"
)

// maxPhoneDFAStates bounds the DFA states one fastPhone (one file, or one
// API request) builds across all the calling codes and regions it meets:
// about 150 bytes each, so at most ~3 MB. A file of ten countries' mobiles
// needs a few thousand. When the budget is spent the fastPhone drops its
// DFAs and builds them again as numbers come.
const maxPhoneDFAStates = 20000

// fastPhone decides the plainly written numbers phonenumbers would accept,
// without it, and gives the same E.164: a national number of the partner's
// region ("912345678", "0151 1234 5678" for DE) and an international one
// of any calling code the library has metadata for ("+49 151 12345678",
// "0049 151 12345678" where the region dials out with 00). It walks the
// library's own steps (Parse: parsePrefixAsIdd, maybeExtractCountryCode,
// maybeStripNationalPrefixAndCarrierCode, testNumberLength; IsValidNumber:
// getRegionCodeForNumberFromRegionList, getNumberTypeHelper) on the
// metadata's patterns through digit DFAs. It only ever accepts: a number it
// cannot prove valid (invalid, or written with letters, extensions, other
// characters) goes to the library, so the partner's error message is the
// library's verdict. TestFastPhoneAgreesWithPhonenumbers and
// FuzzFastPhoneAgreesWithPhonenumbers hold the two together.
//
// DFAs are built lazily per calling code and region, from patterns compiled
// once per process (regionRules), within maxPhoneDFAStates. A fastPhone is
// used by one goroutine.
type fastPhone struct {
	homeID string
	home   *regionMatch // the partner's region; nil: national numbers go to the library
	ccs    [1000]*ccMatch
	budget dfaBudget
	limit  int // maxPhoneDFAStates; smaller in tests
	// digits is normalize's scratch: an array on its stack escaped (the
	// callees take a slice of it), one allocation a number.
	digits [24]byte
}

// ccMatch is a calling code's regions, in the library's order (the first
// is the code's main region), each built on first use.
type ccMatch struct {
	cc      int
	names   []string
	regions []*regionMatch
}

// regionMatch is a region's rules with this fastPhone's DFAs, each built on
// first use.
type regionMatch struct {
	r                                    *regionRules // nil: the library has no metadata for the region
	budget                               *dfaBudget
	general, leading, nppStart, iddStart *digitMatcher
	byLen                                [maxNSN + 1]*digitMatcher
}

// newFastPhone prepares the fast path for a partner's region. It is cheap:
// everything is built when numbers need it.
func newFastPhone(region string) *fastPhone {
	f := &fastPhone{homeID: region, limit: maxPhoneDFAStates}
	f.reset()
	return f
}

// reset drops every DFA and restores the budget.
func (f *fastPhone) reset() {
	f.budget.left = f.limit
	clear(f.ccs[:])
	f.home = nil
	t := loadPhoneTables()
	if md := t.byID[f.homeID]; md != nil {
		cc := int(md.GetCountryCode())
		if cc > 0 && cc < len(t.regions) && containsString(t.regions[cc], f.homeID) {
			if r := rulesFor(cc, f.homeID); r != nil {
				f.home = &regionMatch{r: r, budget: &f.budget}
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// normalize returns the E.164 form and true when s is a plainly written,
// valid number; false means "ask the complete parser".
func (f *fastPhone) normalize(s string) (string, bool) {
	if f == nil || len(s) > phonenumbers.MAX_INPUT_STRING_LENGTH {
		return "", false
	}
	buf := &f.digits
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
	if n < 3 {
		// isViablePhoneNumber's special cases for two digits; no valid
		// number is that short.
		return "", false
	}
	if f.budget.left <= 0 {
		f.reset()
	}
	if plus {
		return f.international(buf[:n])
	}
	if f.home == nil {
		return "", false
	}
	return f.national(buf[:n])
}

// national is Parse's path for digits without a plus, read in the
// partner's region.
func (f *fastPhone) national(d []byte) (string, bool) {
	h := f.home
	r := h.r
	if h.use(&h.iddStart, r.iddStart).match(d) {
		// maybeStripInternationalPrefixAndNormalize: the region's
		// international prefix, unless a 0 follows it.
		end := len(r.iddLit)
		if r.iddLit == "" {
			loc := r.iddRe.FindIndex(d)
			if loc == nil || loc[0] != 0 {
				return "", false
			}
			end = loc[1]
		}
		if rest := d[end:]; len(rest) == 0 || rest[0] != '0' {
			return f.international(rest)
		}
	}
	c := f.callingCode(r.cc)
	if c == nil {
		return "", false
	}
	if bytes.HasPrefix(d, []byte(r.ccStr)) {
		// maybeExtractCountryCode: the region's own calling code written
		// without a plus is dropped when the rest reads better.
		p := h.stripNationalPrefix(d[len(r.ccStr):])
		g := h.use(&h.general, r.general)
		if (!g.match(d) && g.match(p)) || r.lengthResult(len(d)) == phonenumbers.TOO_LONG {
			return f.finish(c, f.region(c, 0), p)
		}
	}
	return f.finish(c, h, d)
}

// international is Parse's path after a plus or an international prefix.
func (f *fastPhone) international(e []byte) (string, bool) {
	if len(e) <= minNSN || e[0] == '0' {
		return "", false
	}
	cc := 0
	for i := 0; i < 3 && i < len(e); i++ {
		cc = cc*10 + int(e[i]-'0')
		if c := f.callingCode(cc); c != nil {
			return f.finish(c, f.region(c, 0), e[i+1:])
		}
	}
	return "", false
}

// finish is the end of parseHelper (the national prefix stripped when
// what is left has a possible length, the NSN length bounds) and
// IsValidNumber, with strip the region whose national prefix applies.
func (f *fastPhone) finish(c *ccMatch, strip *regionMatch, n []byte) (string, bool) {
	if len(n) < minNSN {
		return "", false
	}
	if strip.r != nil {
		p := strip.stripNationalPrefix(n)
		if res := strip.r.lengthResult(len(p)); res == phonenumbers.IS_POSSIBLE || res == phonenumbers.TOO_LONG {
			n = p
		}
	}
	if len(n) < minNSN || len(n) > maxNSN || !f.valid(c, n) {
		return "", false
	}
	// Format(E164): the national number's digits, leading zeros kept.
	var out [1 + 3 + maxNSN]byte
	o := append(out[:0], '+')
	o = appendInt(o, c.cc)
	o = append(o, n...)
	return string(o), true
}

func appendInt(b []byte, v int) []byte {
	var d [3]byte
	i := len(d)
	for v > 0 && i > 0 {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[i:]...)
}

// valid is IsValidNumber for an NSN of calling code c: the region that
// getRegionCodeForNumber picks must find a type for the number.
func (f *fastPhone) valid(c *ccMatch, nsn []byte) bool {
	if len(c.names) == 1 {
		return f.region(c, 0).validIn(c, nsn)
	}
	for i := range c.names {
		m := f.region(c, i)
		if m.r == nil {
			continue // no metadata: no leading digits, no type
		}
		if m.r.leading != nil {
			if m.use(&m.leading, m.r.leading).match(nsn) {
				return m.validIn(c, nsn)
			}
		} else if m.validIn(c, nsn) {
			return true
		}
	}
	return false
}

// validIn is IsValidNumberForRegion: the region's calling code is the
// number's, and getNumberTypeHelper finds a type.
func (m *regionMatch) validIn(c *ccMatch, nsn []byte) bool {
	r := m.r
	if r == nil || (r.cc != c.cc && c.names[0] != "001") {
		return false
	}
	l := len(nsn)
	if !containsLen(r.genLens, l) || r.byLen[l] == nil {
		return false
	}
	return m.use(&m.general, r.general).match(nsn) && m.use(&m.byLen[l], r.byLen[l]).match(nsn)
}

// stripNationalPrefix is maybeStripNationalPrefixAndCarrierCode: n without
// the region's national prefix, or n when it has none or when stripping it
// would turn a number matching the general pattern into one that does not.
func (m *regionMatch) stripNationalPrefix(n []byte) []byte {
	r := m.r
	if len(n) == 0 || r.nppStart == nil || !m.use(&m.nppStart, r.nppStart).match(n) {
		return n
	}
	lit := [2]int{0, r.nppLen} // a plain-digits prefix: no group
	groups := lit[:]
	if r.nppLen == 0 {
		if groups = r.nppRe.FindSubmatchIndex(n); groups == nil {
			return n
		}
	}
	k := len(groups)/2 - 1
	g := m.use(&m.general, r.general)
	viable := g.match(n)
	if r.transform == "" || groups[k*2] < 0 {
		if viable && !g.match(n[groups[1]:]) {
			return n
		}
		return n[groups[1]:]
	}
	t := r.nppRe.ReplaceAll(n, []byte(r.transform))
	if viable && !g.match(t) {
		return n
	}
	return t
}

// callingCode returns the regions of calling code cc, or nil when the
// library knows no such code.
func (f *fastPhone) callingCode(cc int) *ccMatch {
	if cc <= 0 || cc >= len(f.ccs) {
		return nil
	}
	if c := f.ccs[cc]; c != nil {
		return c
	}
	names := loadPhoneTables().regions[cc]
	if len(names) == 0 {
		return nil
	}
	c := &ccMatch{cc: cc, names: names, regions: make([]*regionMatch, len(names))}
	f.ccs[cc] = c
	return c
}

// region returns the i-th region of c, built on first use.
func (f *fastPhone) region(c *ccMatch, i int) *regionMatch {
	if m := c.regions[i]; m != nil {
		return m
	}
	m := &regionMatch{r: rulesFor(c.cc, c.names[i]), budget: &f.budget}
	c.regions[i] = m
	return m
}

// use returns the matcher in slot, built from p on first use.
func (m *regionMatch) use(slot **digitMatcher, p *digitPattern) *digitMatcher {
	if *slot == nil {
		*slot = p.matcher(m.budget)
	}
	return *slot
}
