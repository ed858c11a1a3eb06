package lbsync

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sampleMessages are valid messages of every kind.
func sampleMessages() map[string]*message {
	return map[string]*message{
		"hello": {kind: msgHello, name: []byte("lb1")},
		"done":  {kind: msgDone, count: 1000000},
		"records": {kind: msgRecords,
			tables: []tableRef{{name: []byte("sticky"), max: 100000}, {name: []byte("udp"), max: 1 << 20}},
			nodes:  [][]byte{[]byte("lb1"), []byte("lb2")},
			records: []record{
				{table: 0, node: 1, version: 1736000000000000000, ttl: 3600000, key: []byte("http-cookie/app/0123456789abcdef"), value: []byte("198.18.1.1:8080")},
				{table: 1, node: 0, version: 7, ttl: 30000, key: []byte("198.18.0.50:40000"), value: []byte("198.18.1.2:53")},
				{table: 1, node: 0, tomb: true, version: 8, ttl: 5000, key: []byte("198.18.0.51:40000")},
				{table: 0, node: 0, version: 1, key: []byte(""), value: []byte("")},
			}},
		"empty records": {kind: msgRecords},
		"begin":         {kind: msgBegin, tables: []tableRef{{name: []byte("sticky"), max: 100000, count: 99999}, {name: []byte("udp"), max: 1 << 20}}},
	}
}

// normal makes decoded and built messages comparable.
func normal(m *message) message {
	n := *m
	if len(n.tables) == 0 {
		n.tables = nil
	}
	if len(n.nodes) == 0 {
		n.nodes = nil
	}
	if len(n.records) == 0 {
		n.records = nil
	}
	for i := range n.records {
		if len(n.records[i].value) == 0 {
			n.records[i].value = nil
		}
		if len(n.records[i].key) == 0 {
			n.records[i].key = nil
		}
	}
	return n
}

var cmpMessage = cmp.AllowUnexported(message{}, tableRef{}, record{})

func TestCodecRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b := appendMessage(nil, m)
			var got message
			if err := decode(b, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(normal(m), normal(&got), cmpMessage); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCodecTruncated decodes every proper prefix of every sample: each is
// refused whole.
func TestCodecTruncated(t *testing.T) {
	for name, m := range sampleMessages() {
		b := appendMessage(nil, m)
		for n := range len(b) {
			var got message
			err := decode(b[:n], &got)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut at %d of %d bytes: err %v, want ErrMalformed", name, n, len(b), err)
			}
			if len(got.records) != 0 || len(got.tables) != 0 {
				t.Errorf("%s cut at %d: partial message kept: %d records", name, n, len(got.records))
			}
		}
	}
}

func TestCodecMalformed(t *testing.T) {
	rec := func(tail ...byte) []byte {
		// one table "t", one node "n", one record with the given tail
		return append([]byte{msgRecords, 1, 1, 't', 0, 1, 1, 'n', 1}, tail...)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{9}},
		{"trailing bytes", []byte{msgDone, 1, 0}},
		{"overlong varint", []byte{msgDone, 0x81, 0x00}},
		{"empty node name", []byte{msgHello, 0}},
		{"table index out of range", rec(0, 1, 0, 1, 0, 0, 0)},
		{"node index out of range", rec(0, 0, 1, 1, 0, 0, 0)},
		{"unknown flag", rec(2, 0, 0, 1, 0, 0)},
		{"key longer than the message", rec(0, 0, 0, 1, 0, 5, 'a')},
		{"key over the limit", rec(append([]byte{0, 0, 0, 1, 0, 0x81, 0x20}, make([]byte, 4097)...)...)},
		{"record count over the bytes left", []byte{msgRecords, 0, 0, 100}},
		{"records without dictionaries", []byte{msgRecords, 0, 0, 1, 1, 0, 0, 1, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			if err := decode(tc.in, &m); !errors.Is(err, ErrMalformed) {
				t.Errorf("decode(%x) = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

// TestEncoderMatchesCodec checks that the data path's encoder writes what
// decode reads, with dictionaries built from tables and node ids.
func TestEncoderMatchesCodec(t *testing.T) {
	c, _ := localCluster(t, "lb1")
	id, _ := c.names.id([]byte("lb2"))
	sticky, udp := c.Table("sticky", 100000), c.Table("udp", 1<<20)
	enc := newRecordEncoder(c.names)
	enc.add(sticky, id, false, 1736000000000000000, 3600000, "http-cookie/app/0123456789abcdef", "198.18.1.1:8080")
	enc.add(udp, 0, false, 7, 30000, "198.18.0.50:40000", "198.18.1.2:53")
	enc.add(udp, 0, true, 8, 5000, "198.18.0.51:40000", "")
	enc.add(sticky, 0, false, 1, 0, "", "")
	got := enc.finish(nil)
	want := appendMessage(nil, sampleMessages()["records"])
	if diff := cmp.Diff(flatten(t, want), flatten(t, got)); diff != "" {
		t.Errorf("records (-codec +encoder):\n%s", diff)
	}
	if len(got) != len(want) {
		t.Errorf("encoder wrote %d bytes, codec %d", len(got), len(want))
	}
	if enc.len() != 0 || !bytes.Equal(enc.finish(nil), []byte{msgRecords, 0, 0, 0}) {
		t.Error("finish did not reset the encoder")
	}
}

// flatten decodes a records message into one line per record, with the
// dictionaries resolved.
func flatten(t *testing.T, b []byte) []string {
	t.Helper()
	var m message
	if err := decode(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range m.records {
		tb := m.tables[r.table]
		out = append(out, fmt.Sprintf("%s/%d %s v%d ttl%d tomb=%v %q=%q", tb.name, tb.max, m.nodes[r.node], r.version, r.ttl, r.tomb, r.key, r.value))
	}
	return out
}
