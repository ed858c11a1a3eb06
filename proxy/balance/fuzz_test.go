package balance

import (
	"fmt"
	"testing"
)

// FuzzPick builds a pool from the input (up to 12 backends with arbitrary
// weights, states, ejection, slow start, agent load, limits, active counts
// and exclusions), changes it after the tables are built, and checks the
// contract of every algorithm: Pick returns a backend with room, and nil
// only when there is none.
func FuzzPick(f *testing.F) {
	f.Add([]byte{3, 0, 5, 0, 0, 10, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{1, 1, 0, 3, 1, 0, 0, 5, 2})
	f.Add([]byte{12, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			c := data[0]
			data = data[1:]
			return c
		}
		n := int(next()%12) + 1
		bs := make([]*Backend, n)
		for i := range bs {
			b, err := NewBackend(BackendConfig{Address: fmt.Sprintf("198.18.0.%d:80", i+1), Weight: int(next()) % (MaxWeight + 1)})
			if err != nil {
				t.Fatal(err)
			}
			bs[i] = b
		}
		var ex Exclude
		for _, alg := range Algorithms() {
			bal, err := New(alg, bs)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				c := next()
				must(t, b.SetState(State(c%4)))
				b.SetEjected(c&4 != 0)
				must(t, b.SetWeightPermille(int(next())*4%1001))
				must(t, b.SetAgentPercent(int(next())%101))
				must(t, b.SetMaxConnections(int(next()%4)))
				for b.Active() < int(c>>4) {
					b.Inc()
				}
				if c&8 != 0 {
					ex.Add(b)
				}
			}
			hasRoom := func(b *Backend) bool {
				return b.room(&ex) && (alg != Resource || b.AgentPercent() > 0)
			}
			anyRoom := false
			for _, b := range bs {
				anyRoom = anyRoom || hasRoom(b)
			}
			for i := 0; i < 20; i++ {
				k := Key{Hash: uint64(next()) * 0x9e3779b97f4a7c15, Has: i%2 == 0}
				b := bal.Pick(k, ex)
				if b == nil && anyRoom {
					t.Fatalf("%s: Pick = nil though a backend has room", alg)
				}
				if b != nil && !hasRoom(b) {
					t.Fatalf("%s: Pick = %v (state %v, ejected %v, eff %d, %d/%d active, excluded %v), which has no room",
						alg, b, b.State(), b.Ejected(), b.EffectiveWeight(), b.Active(), b.MaxConnections(), ex.Has(b))
				}
			}
		}
	})
}
