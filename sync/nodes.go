package lbsync

import (
	"sync"
	"sync/atomic"
)

// maxNodes bounds the node names a process interns (writers of entries).
const maxNodes = maxDictLen

// nodeNames interns the names of the nodes that wrote entries, so that an
// entry holds a 4-byte id. Id 0 is this node. Reading a name takes no lock.
type nodeNames struct {
	mu   sync.Mutex // guards ids and writes of list
	ids  map[string]uint32
	list atomic.Pointer[[]string] // copy on write
}

func newNodeNames(self string) *nodeNames {
	n := &nodeNames{ids: map[string]uint32{self: 0}}
	l := []string{self}
	n.list.Store(&l)
	return n
}

// name returns the name of id.
func (n *nodeNames) name(id uint32) string { return (*n.list.Load())[id] }

// id returns the id of name, interning it; ok is false when the table of
// names is full.
func (n *nodeNames) id(name []byte) (uint32, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id, ok := n.ids[string(name)]; ok {
		return id, true
	}
	old := *n.list.Load()
	if len(old) >= maxNodes {
		return 0, false
	}
	s := string(name)
	l := append(old[:len(old):len(old)], s)
	n.ids[s] = uint32(len(old))
	n.list.Store(&l)
	return uint32(len(old)), true
}

// newer reports whether a write (version v by node id) wins over an entry
// written as (ev, eid): the higher version wins, then the greater node name.
// Every node applies the same rule, so all converge on the same value.
func (n *nodeNames) newer(v uint64, id uint32, ev uint64, eid uint32) bool {
	if v != ev {
		return v > ev
	}
	if id == eid {
		return false
	}
	l := *n.list.Load()
	return l[id] > l[eid]
}
