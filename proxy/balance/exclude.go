package balance

// MaxExclude is how many backends an Exclude can hold, more than any
// sensible retry count.
const MaxExclude = 8

// Exclude lists the backends a request already tried, so that a retry goes
// elsewhere. It is a small value passed to Pick by value: no allocation.
//
//	var ex balance.Exclude
//	for try := 0; try <= retries; try++ {
//		b := bal.Pick(key, ex)
//		if b == nil || dial(b) == nil {
//			break
//		}
//		ex.Add(b)
//	}
type Exclude struct {
	n int
	b [MaxExclude]*Backend
}

// Add excludes b. It reports false when the list is full, and then the
// request should stop retrying.
func (e *Exclude) Add(b *Backend) bool {
	if e.Has(b) {
		return true
	}
	if e.n == MaxExclude {
		return false
	}
	e.b[e.n] = b
	e.n++
	return true
}

// Has reports whether b is excluded.
func (e *Exclude) Has(b *Backend) bool {
	for i := 0; i < e.n; i++ {
		if e.b[i] == b {
			return true
		}
	}
	return false
}

// Len returns the number of excluded backends.
func (e *Exclude) Len() int { return e.n }
