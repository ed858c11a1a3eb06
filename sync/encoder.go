package lbsync

import "encoding/binary"

// recordEncoder builds records messages from table entries without
// allocating per record. The table and node dictionaries are gathered while
// records are added and written in front of them by finish. Callers cut a
// message once full reports true, so that messages stay near chunkTarget
// bytes and a receiver's memory stays bounded.
type recordEncoder struct {
	names   *nodeNames
	body    []byte
	n       int
	tables  []*Table
	tblIdx  map[*Table]uint32
	nodes   []uint32 // node ids, in dictionary order
	nodeIdx map[uint32]uint32
}

func newRecordEncoder(names *nodeNames) *recordEncoder {
	return &recordEncoder{names: names, tblIdx: map[*Table]uint32{}, nodeIdx: map[uint32]uint32{}}
}

// add appends one record. ttl is the remaining lifetime in milliseconds (0:
// none).
func (e *recordEncoder) add(t *Table, node uint32, tomb bool, version, ttl uint64, key, value string) {
	ti, ok := e.tblIdx[t]
	if !ok {
		ti = uint32(len(e.tables))
		e.tblIdx[t] = ti
		e.tables = append(e.tables, t)
	}
	ni, ok := e.nodeIdx[node]
	if !ok {
		ni = uint32(len(e.nodes))
		e.nodeIdx[node] = ni
		e.nodes = append(e.nodes, node)
	}
	e.body = appendRecord(e.body, ti, ni, tomb, version, ttl, key, value)
	e.n++
}

// full reports whether the message has reached its target size.
func (e *recordEncoder) full() bool { return len(e.body) >= chunkTarget }

// len returns the number of records added since the last finish.
func (e *recordEncoder) len() int { return e.n }

// finish appends the message to dst and starts a new one.
func (e *recordEncoder) finish(dst []byte) []byte {
	dst = append(dst, msgRecords)
	dst = binary.AppendUvarint(dst, uint64(len(e.tables)))
	for _, t := range e.tables {
		dst = appendBytes(dst, t.name)
		dst = binary.AppendUvarint(dst, uint64(t.max.Load()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.nodes)))
	for _, id := range e.nodes {
		dst = appendBytes(dst, e.names.name(id))
	}
	dst = binary.AppendUvarint(dst, uint64(e.n))
	dst = append(dst, e.body...)
	e.body, e.n, e.tables, e.nodes = e.body[:0], 0, e.tables[:0], e.nodes[:0]
	clear(e.tblIdx)
	clear(e.nodeIdx)
	return dst
}
