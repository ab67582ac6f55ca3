package ingest

import "sync"

// apiPhonePools keeps phone normalizers of API sends warm between requests,
// one pool per region. A normalizer builds its fast path's automata as
// numbers need them (phonefast.go); an API send used to make a normalizer
// per request and so built them again each time, 8% of a single send's
// CPU. A normalizer is used by one goroutine at a time: a request takes one
// from the pool and puts it back when done.
var apiPhonePools sync.Map // region -> *sync.Pool of *phoneNormalizer

// apiPhones takes a normalizer for region; give it back with
// releaseAPIPhones.
func apiPhones(region string) *phoneNormalizer {
	p, ok := apiPhonePools.Load(region)
	if !ok {
		p, _ = apiPhonePools.LoadOrStore(region, &sync.Pool{New: func() any { return newPhoneNormalizer(region) }})
	}
	return p.(*sync.Pool).Get().(*phoneNormalizer)
}

// releaseAPIPhones returns a normalizer taken with apiPhones.
func releaseAPIPhones(pn *phoneNormalizer) {
	if p, ok := apiPhonePools.Load(pn.region); ok {
		p.(*sync.Pool).Put(pn)
	}
}
