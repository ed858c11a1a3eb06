package lbsync

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message kinds: the first byte of every sync message.
const (
	msgHello   = 1 // uvarint-length node name, then uvarint incarnation: the first frame each way on a stream
	msgRecords = 2 // table and node dictionaries, then records (deltas, chunks, snapshots)
	msgDone    = 3 // uvarint record count: the full-state transfer is complete
	msgBegin   = 4 // tables (name, max_entries, entries) a full-state transfer will send
	msgAck     = 5 // uvarint frame count: the receiver has applied that many frames of the stream
)

// Limits of the codec. A message beyond them is malformed.
const (
	maxNameLen  = 255      // table and node names
	maxKeyLen   = 4096     // a record's key
	maxValueLen = 4096     // a record's value
	maxDictLen  = 1024     // tables or nodes named in one message
	minRecord   = 6        // bytes of the smallest record (tombstone, empty key)
	flagTomb    = 1 << 0   // record flag: a deletion
	maxFrame    = 16 << 20 // bytes of one frame on a stream (sealed)
	chunkTarget = 60 << 10 // a records message is cut when its body passes this
)

// ErrMalformed is wrapped by every decoding error: the message is dropped
// whole and counted, never applied in part.
var ErrMalformed = errors.New("sync: malformed message")

// tableRef names a table in a records message, with the max_entries the
// sender uses (a receiver that does not know the table yet creates it with
// that bound).
type tableRef struct {
	name  []byte
	max   uint64
	count uint64 // msgBegin only: entries and tombstones to come
}

// record is one decoded table entry; key and value alias the message buffer.
type record struct {
	table   uint32 // index into message.tables
	node    uint32 // index into message.nodes: the node that wrote it
	tomb    bool   // a deletion: value is empty
	version uint64
	ttl     uint64 // remaining lifetime in milliseconds; 0: none
	key     []byte
	value   []byte
}

// message is a decoded sync message. Byte slices alias the decoded buffer,
// so a message is valid only as long as that buffer is.
type message struct {
	kind    byte
	name    []byte     // msgHello
	count   uint64     // msgDone, msgAck; msgHello: the incarnation (0 when absent)
	tables  []tableRef // msgRecords, msgBegin
	nodes   [][]byte
	records []record
}

// reader walks a buffer; the first failure sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	// Only the shortest encoding is accepted, so that a message has one
	// form and re-encodes to the same bytes.
	if n > 1 && r.b[n-1] == 0 {
		r.fail("overlong varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a uvarint that must not exceed max.
func (r *reader) count(what string, max uint64) int {
	v := r.uvarint()
	if v > max {
		r.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return int(v)
}

// bytes reads a uvarint length and that many bytes (at most max).
func (r *reader) bytes(what string, max int) []byte {
	v := r.uvarint()
	if r.err != nil {
		return nil
	}
	if v > uint64(max) {
		r.fail("%s length %d exceeds %d", what, v, max)
		return nil
	}
	n := int(v)
	if n > len(r.b) {
		r.fail("truncated %s", what)
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// name reads a non-empty table or node name.
func (r *reader) name(what string) []byte {
	s := r.bytes(what, maxNameLen)
	if r.err == nil && len(s) == 0 {
		r.fail("empty %s", what)
	}
	return s
}

// decode parses b into m, reusing m's slices. It checks the whole message
// before returning, so on error nothing of it may be used.
func decode(b []byte, m *message) error {
	*m = message{tables: m.tables[:0], nodes: m.nodes[:0], records: m.records[:0]}
	r := reader{b: b}
	m.kind = r.byte()
	switch m.kind {
	case msgHello:
		m.name = r.name("node name")
		if len(r.b) > 0 {
			// Present only when set: one wire form per message.
			if m.count = r.uvarint(); m.count == 0 && r.err == nil {
				r.fail("zero incarnation")
			}
		}
	case msgDone, msgAck:
		m.count = r.uvarint()
	case msgRecords:
		decodeRecords(&r, m)
	case msgBegin:
		nt := r.count("table count", maxDictLen)
		for range nt {
			name := r.name("table name")
			max := r.uvarint()
			m.tables = append(m.tables, tableRef{name: name, max: max, count: r.uvarint()})
		}
	default:
		if r.err == nil {
			r.fail("unknown kind %d", m.kind)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		*m = message{tables: m.tables[:0], nodes: m.nodes[:0], records: m.records[:0]}
	}
	return r.err
}

func decodeRecords(r *reader, m *message) {
	nt := r.count("table count", maxDictLen)
	for range nt {
		name := r.name("table name")
		m.tables = append(m.tables, tableRef{name: name, max: r.uvarint()})
	}
	nn := r.count("node count", maxDictLen)
	for range nn {
		m.nodes = append(m.nodes, r.name("node name"))
	}
	nr := r.count("record count", uint64(len(r.b)/minRecord))
	for range nr {
		var rec record
		flags := r.byte()
		if flags&^flagTomb != 0 {
			r.fail("unknown record flags %#x", flags)
		}
		rec.tomb = flags&flagTomb != 0
		rec.table = uint32(r.count("table index", uint64(max(nt-1, 0))))
		rec.node = uint32(r.count("node index", uint64(max(nn-1, 0))))
		if nt == 0 || nn == 0 {
			r.fail("record without table or node dictionary")
		}
		rec.version = r.uvarint()
		rec.ttl = r.uvarint()
		rec.key = r.bytes("key", maxKeyLen)
		if !rec.tomb {
			rec.value = r.bytes("value", maxValueLen)
		}
		if r.err != nil {
			return
		}
		m.records = append(m.records, rec)
	}
}

// appendMessage appends the wire form of m to dst. Encoders in the data path
// (recordEncoder) produce the same bytes without building a message.
func appendMessage(dst []byte, m *message) []byte {
	dst = append(dst, m.kind)
	switch m.kind {
	case msgHello:
		dst = appendBytes(dst, m.name)
		if m.count != 0 {
			dst = binary.AppendUvarint(dst, m.count)
		}
	case msgDone, msgAck:
		dst = binary.AppendUvarint(dst, m.count)
	case msgBegin:
		dst = binary.AppendUvarint(dst, uint64(len(m.tables)))
		for _, t := range m.tables {
			dst = appendBytes(dst, t.name)
			dst = binary.AppendUvarint(dst, t.max)
			dst = binary.AppendUvarint(dst, t.count)
		}
	case msgRecords:
		dst = binary.AppendUvarint(dst, uint64(len(m.tables)))
		for _, t := range m.tables {
			dst = appendBytes(dst, t.name)
			dst = binary.AppendUvarint(dst, t.max)
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.nodes)))
		for _, n := range m.nodes {
			dst = appendBytes(dst, n)
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.records)))
		for _, r := range m.records {
			dst = appendRecord(dst, r.table, r.node, r.tomb, r.version, r.ttl, r.key, r.value)
		}
	}
	return dst
}

func appendRecord[S string | []byte](dst []byte, table, node uint32, tomb bool, version, ttl uint64, key, value S) []byte {
	var flags byte
	if tomb {
		flags = flagTomb
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(table))
	dst = binary.AppendUvarint(dst, uint64(node))
	dst = binary.AppendUvarint(dst, version)
	dst = binary.AppendUvarint(dst, ttl)
	dst = appendBytes(dst, key)
	if !tomb {
		dst = appendBytes(dst, value)
	}
	return dst
}

func appendBytes[S string | []byte](dst []byte, s S) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
