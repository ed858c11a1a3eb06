// Package lbsync is the lbd cluster: membership and failure detection with
// memberlist (SWIM, as in Das et al., "SWIM: Scalable Weakly-consistent
// Infection-style Process Group Membership Protocol"), and tables replicated
// to every member: sticky cookie → backend, source IP → backend, UDP flow →
// backend. It lives in directory sync/; the package is named lbsync so as not
// to shadow the standard library's sync.
//
// # Membership
//
// New starts memberlist on [cluster] bind and joins the peers. With a
// secret key, gossip is sealed with AES-GCM by memberlist's Keyring; a node
// with another key, or none, never joins, and what it sends is counted
// (Stats.RejectedPackets, Stats.RejectedStreams). Members lists the nodes
// with their state and address; Alive and AliveAt give VRRP a second opinion
// on whether a master it no longer hears is really gone.
//
// # Tables
//
// A Table is one generic core for every use: string keys, string values,
// expiry and a version. It has the method set of proxy.Affinity (Lookup,
// Store, Delete), so the node hands it to the proxy as is; Uses bundles the
// typed tables (sticky cookie, source IP, UDP flow → backend) behind one
// Affinity that routes each key by its form. A table is split in lock
// stripes, each with an LRU list kept the CLOCK way (second chance), and is
// bounded to max_entries (evictions counted). A write's version is the
// writer's clock (unix ns, millisecond resolution), and always above the
// key's previous version; a write from a peer is applied when its (version,
// node name) is greater, so concurrent writes on two nodes converge to the
// same value everywhere. Deletions are tombstones that live until the
// deleted entry would have expired. Lifetimes travel as remaining
// milliseconds, so members agree on expiry whatever their clocks.
//
// # Replication
//
// Replication does not ride on gossip. Each node keeps one TCP stream to
// every other alive member, on the gossip port itself: the transport hands
// memberlist its own streams and keeps those whose first byte is the sync
// magic (0xB5). A local write is queued (the writer takes no lock beyond its
// stripe and an append), encoded once by a flusher as soon as it is free, and
// written to every member's stream; the receiver applies it on its own
// goroutine. On each new stream the sender first transfers its whole state:
// the tables' sizes (an empty receiver sizes its maps once), then stripe by
// stripe in chunks of about 60 KiB (memory stays bounded; no 20 MiB
// push/pull cap), interleaved with the writes made meanwhile. A
// member that falls behind by more than 64 MiB has its stream reset and gets
// the full state again.
//
// The receiver acknowledges the frames it applied (msgAck) whenever it has
// read all that arrived, and at least every 16 frames; the sender measures
// each peer's lag and pending records from it (Peers, lbctl sessions). A
// stream that breaks resumes when the member answers again with the same
// incarnation (a random number each process draws at start, sent in its
// hello): the sender resends the frames not acknowledged and the writes
// queued meanwhile, and an interrupted full-state transfer continues from
// the first stripe not acknowledged. A feed outlives its member being held
// dead by memberlist for 5 minutes, queueing writes, so a healed partition
// resumes too. A restarted member, or one whose queue overflowed, gets the
// full state.
//
// Streams are authenticated and sealed when a key is set: a handshake swaps
// nonces, both directions use AES-256-GCM under keys derived with
// HMAC-SHA256 from the cluster key, and frame counters as nonces.
//
// # Wire format
//
// Messages (codec.go) are a kind byte and varint-length fields: a records
// message carries a table dictionary (name, max_entries), a node dictionary,
// then records (flags, table, node, version, ttl ms, key, value). A
// malformed or truncated message is dropped whole and counted.
//
// # Restarts
//
// Tables are written to state_dir/sync.snap on Close and every
// SnapshotInterval (temporary file, fsync, rename; CRC-32C checked). New
// loads the snapshot before joining, then catches up from the peers' full
// state. A corrupt snapshot is logged, kept aside as sync.snap.corrupt and
// ignored.
package lbsync
