package lbsync

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds decode arbitrary messages. Seeds (testdata/fuzz/FuzzDecode)
// hold a message of each kind, deltas, a full-state chunk, a tombstone and
// truncations. Properties: decode never panics; a message it accepts
// re-encodes to exactly its input (one wire form per message) and applies
// to tables without panicking; a refused one leaves nothing behind.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(appendMessage(nil, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		if err := decode(b, &m); err != nil {
			if m.kind != 0 || len(m.records) != 0 || len(m.tables) != 0 || len(m.nodes) != 0 || m.name != nil {
				t.Fatalf("refused message left %+v", m)
			}
			return
		}
		if again := appendMessage(nil, &m); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded\n%x\nfrom\n%x", again, b)
		}
		if m.kind == msgRecords {
			c, _ := localCluster(t, "lb1")
			if err := c.applyMessage(&m, c.now()); err != nil {
				t.Fatalf("applying: %v", err)
			}
		}
	})
}
