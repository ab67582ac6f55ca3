package ingest

// fastPhone is filled in by the fast path; see normalize.
type fastPhone struct{ region string }

func newFastPhone(region string) *fastPhone { return &fastPhone{region: region} }

// normalize returns ok=false whenever the slow, complete parser must decide.
func (f *fastPhone) normalize(s string) (string, bool) { return "", false }
