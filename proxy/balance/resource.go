package balance

// resource balances by the load each backend's agent reports, as HAProxy's
// agent-check: a reply of "75%" sets the backend's weight to 75 % of its
// configured weight (times slow start), 0 % takes it out of rotation. Agent
// reports arrive every few seconds, so between them it behaves as weighted
// least_conn on those weights, which also absorbs load the agent has not
// seen yet. Before the first report a backend counts at 100 %, and the
// algorithm is least_conn.
type resource struct{ pool }

var _ Balancer = (*resource)(nil)

func newResource(bs []*Backend) *resource {
	r := &resource{}
	r.init(Resource, bs, nil)
	return r
}

// Pick implements Balancer.
func (r *resource) Pick(_ Key, ex Exclude) *Backend {
	return leastLoaded(r.backends, &ex, true)
}
