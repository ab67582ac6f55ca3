package ingest

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// phoneMetadata is phonenumbers' metadata collection. The library caches it
// on first use without a lock, so it is fetched once, here, through a
// sync.OnceValues; it is never changed after.
var phoneMetadata = sync.OnceValues(phonenumbers.MetadataCollection)

// maxNSN is the longest national significant number phonenumbers parses
// (its MAX_LENGTH_FOR_NSN); minNSN the shortest.
const (
	minNSN = 2
	maxNSN = 17
)

// phoneTables indexes the metadata the fast path reads: the regions of
// every calling code, in the library's order (the first is the code's main
// region), and the metadata of each region and of each non-geographic code.
type phoneTables struct {
	regions [1000][]string
	byID    map[string]*phonenumbers.PhoneMetadata
	nonGeo  map[int32]*phonenumbers.PhoneMetadata
}

var loadPhoneTables = sync.OnceValue(func() *phoneTables {
	t := &phoneTables{byID: map[string]*phonenumbers.PhoneMetadata{}, nonGeo: map[int32]*phonenumbers.PhoneMetadata{}}
	coll, err := phoneMetadata()
	if err != nil {
		return t
	}
	for _, md := range coll.GetMetadata() {
		if md.GetId() == "001" {
			t.nonGeo[md.GetCountryCode()] = md
		} else {
			t.byID[md.GetId()] = md
		}
	}
	for cc := 1; cc < len(t.regions); cc++ {
		t.regions[cc] = phonenumbers.GetRegionCodesForCountryCode(cc)
	}
	return t
})

// metadata is what phonenumbers' getMetadataForRegionOrCallingCode returns.
func (t *phoneTables) metadata(cc int, region string) *phonenumbers.PhoneMetadata {
	if region == "001" {
		return t.nonGeo[int32(cc)]
	}
	return t.byID[region]
}

// regionRules are one region's parsing and validation rules from its
// metadata, compiled for the digit DFA. They are read-only and shared by
// every fastPhone; each fastPhone builds its own DFAs from them
// (regionMatch). Each rule below names the phonenumbers function whose
// step it takes.
type regionRules struct {
	cc    int
	ccStr string
	// general is the general description's pattern; genLens and local its
	// possible lengths (testNumberLength, isNumberMatchingDesc).
	general *digitPattern
	genLens []int32
	local   []int32
	// byLen holds, per national number length, one alternation of the
	// patterns of every number type possible at that length
	// (getNumberTypeHelper); nil: no type has that length.
	byLen [maxNSN + 1]*digitPattern
	// leading is "the leading digits match" for a region that shares its
	// calling code (getRegionCodeForNumberFromRegionList); nil: none.
	leading *digitPattern
	// npp is the national prefix for parsing: nppStart says whether it
	// matches at the start, nppRe and transform strip it exactly as
	// maybeStripNationalPrefixAndCarrierCode does. nppStart is nil when
	// the region has none.
	nppStart  *digitPattern
	nppLen    int // > 0: npp is plain digits, its match ends after them
	nppRe     *regexp.Regexp
	transform string
	// idd is the international dialling prefix (parsePrefixAsIdd):
	// iddStart says whether it matches at the start; iddLit is the prefix
	// when it is plain digits, else iddRe finds where it ends.
	iddStart *digitPattern
	iddLit   string
	iddRe    *regexp.Regexp
}

// phoneRegionRules holds, by region id ("001/800" for a non-geographic
// code), a func returning its compiled rules, compiled on first use: a
// process only ever compiles the regions its partners' numbers reach (a
// few milliseconds each for the largest).
var phoneRegionRules sync.Map

// rulesFor returns the compiled rules of a region of calling code cc, or
// nil when the library has no metadata for it.
func rulesFor(cc int, region string) *regionRules {
	key := region
	if region == "001" {
		key = "001/" + strconv.Itoa(cc)
	}
	f, ok := phoneRegionRules.Load(key)
	if !ok {
		f, _ = phoneRegionRules.LoadOrStore(key, sync.OnceValue(func() *regionRules {
			return compileRegionRules(loadPhoneTables().metadata(cc, region))
		}))
	}
	return f.(func() *regionRules)()
}

func compileRegionRules(md *phonenumbers.PhoneMetadata) *regionRules {
	if md == nil || md.GetGeneralDesc() == nil || len(md.GetGeneralDesc().GetPossibleLength()) == 0 {
		// Without possible lengths the library itself would fail
		// (testNumberLength reads the first); leave it to the library.
		return nil
	}
	gd := md.GetGeneralDesc()
	r := &regionRules{
		cc:      int(md.GetCountryCode()),
		ccStr:   strconv.Itoa(int(md.GetCountryCode())),
		general: compileDigitPattern(gd.GetNationalNumberPattern()),
		genLens: gd.GetPossibleLength(),
		local:   gd.GetPossibleLengthLocalOnly(),
	}
	types := []*phonenumbers.PhoneNumberDesc{md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(), md.GetVoip(),
		md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail(), md.GetFixedLine()}
	if !md.GetSameMobileAndFixedLinePattern() {
		// getNumberTypeHelper reads the mobile pattern only when it
		// differs from the fixed-line one.
		types = append(types, md.GetMobile())
	}
	for l := minNSN; l <= maxNSN; l++ {
		if !containsLen(r.genLens, l) {
			continue
		}
		var alts []string
		for _, d := range types {
			if d == nil || d.GetNationalNumberPattern() == "" {
				continue // "^(?:)$" matches no number of two digits or more
			}
			if lens := d.GetPossibleLength(); len(lens) > 0 && !containsLen(lens, l) {
				continue
			}
			alts = append(alts, "(?:"+d.GetNationalNumberPattern()+")")
		}
		if len(alts) > 0 {
			r.byLen[l] = compileDigitPattern(strings.Join(alts, "|"))
		}
	}
	if ld := md.GetLeadingDigits(); ld != "" {
		r.leading = compileDigitPattern("(?:" + ld + ")[0-9]*")
	}
	if npp := md.GetNationalPrefixForParsing(); npp != "" {
		r.nppStart = compileDigitPattern("(?:" + npp + ")[0-9]*")
		if strings.Trim(npp, "0123456789") == "" {
			r.nppLen = len(npp)
		}
		r.nppRe = regexp.MustCompile("^(?:" + npp + ")")
		r.transform = md.GetNationalPrefixTransformRule()
	}
	idd := md.GetInternationalPrefix()
	r.iddStart = compileDigitPattern("(?:" + idd + ")[0-9]*")
	if idd != "" && strings.Trim(idd, "0123456789") == "" {
		r.iddLit = idd
	} else {
		r.iddRe = regexp.MustCompile(idd)
	}
	return r
}

func containsLen(lens []int32, l int) bool {
	for _, v := range lens {
		if int(v) == l {
			return true
		}
	}
	return false
}

// lengthResult is phonenumbers' testNumberLength for the general
// description (number type UNKNOWN).
func (r *regionRules) lengthResult(n int) phonenumbers.ValidationResult {
	if r.genLens[0] == -1 {
		return phonenumbers.INVALID_LENGTH
	}
	if containsLen(r.local, n) {
		return phonenumbers.IS_POSSIBLE_LOCAL_ONLY
	}
	switch min := int(r.genLens[0]); {
	case n == min:
		return phonenumbers.IS_POSSIBLE
	case n < min:
		return phonenumbers.TOO_SHORT
	case int(r.genLens[len(r.genLens)-1]) < n:
		return phonenumbers.TOO_LONG
	}
	if containsLen(r.genLens[1:], n) {
		return phonenumbers.IS_POSSIBLE
	}
	return phonenumbers.INVALID_LENGTH
}
