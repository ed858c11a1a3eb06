package balance

import "testing"

func TestExclude(t *testing.T) {
	bs := newBackends(t, make([]int, MaxExclude+1)...)
	var ex Exclude
	for i := 0; i < MaxExclude; i++ {
		if !ex.Add(bs[i]) {
			t.Fatalf("Add #%d = false, want true", i)
		}
	}
	if !ex.Add(bs[0]) {
		t.Error("re-adding an excluded backend to a full list = false, want true")
	}
	if ex.Add(bs[MaxExclude]) {
		t.Error("Add to a full list = true, want false")
	}
	if ex.Len() != MaxExclude {
		t.Errorf("Len() = %d, want %d", ex.Len(), MaxExclude)
	}
	if !ex.Has(bs[3]) || ex.Has(bs[MaxExclude]) {
		t.Errorf("Has: got %v and %v, want true and false", ex.Has(bs[3]), ex.Has(bs[MaxExclude]))
	}
}
