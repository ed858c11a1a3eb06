package lbsync

import "sync/atomic"

// Stats are the cluster's counters, for /metrics and lbctl.
type Stats struct {
	RejectedPackets   uint64 // gossip packets and streams memberlist dropped: key differs or missing
	RejectedStreams   uint64 // sync streams refused: key differs or missing
	DroppedMessages   uint64 // malformed or truncated sync messages, dropped whole
	DeltasSent        uint64 // local writes sent (once for all members)
	RecordsReceived   uint64 // records received from members (deltas and full state)
	StaleRecords      uint64 // of those, older than what this node holds
	FullSyncsSent     uint64 // full-state transfers sent
	FullSyncsReceived uint64 // full-state transfers received complete
	FeedResets        uint64 // streams reset because a member fell behind
	Resumes           uint64 // broken streams resumed without a new full-state transfer
	SnapshotErrors    uint64 // snapshots that could not be written or read
}

type counters struct {
	rejectedPackets, rejectedStreams, dropped, deltasSent   atomic.Uint64
	recordsReceived, staleRecords                           atomic.Uint64
	fullSyncsSent, fullSyncsReceived, feedResets, snapshots atomic.Uint64
	resumes                                                 atomic.Uint64
}

// Stats returns the cluster's counters.
func (c *Cluster) Stats() Stats {
	s := &c.stats
	return Stats{
		RejectedPackets: s.rejectedPackets.Load(), RejectedStreams: s.rejectedStreams.Load(),
		DroppedMessages: s.dropped.Load(), DeltasSent: s.deltasSent.Load(),
		RecordsReceived: s.recordsReceived.Load(), StaleRecords: s.staleRecords.Load(),
		FullSyncsSent: s.fullSyncsSent.Load(), FullSyncsReceived: s.fullSyncsReceived.Load(),
		FeedResets: s.feedResets.Load(), SnapshotErrors: s.snapshots.Load(), Resumes: s.resumes.Load(),
	}
}
