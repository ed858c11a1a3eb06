// Package balance picks the backend of a pool for one request or connection.
// It is the selection core shared by lbd's L4 (tcp, udp) and L7 (http)
// proxies; it opens no sockets and runs no goroutines.
//
// A pool is a list of [*Backend]s, each carrying live state written by other
// parts of lbd: the proxy counts active connections ([Backend.Inc],
// [Backend.Dec]) and reports response times ([Backend.ObserveLatency]);
// health checks and outlier detection set the [State], ejections, the
// slow-start ramp ([Backend.SetWeightPermille]) and agent-reported capacity
// ([Backend.SetAgentPercent], as HAProxy's agent-check "75%"). [New] builds a
// [Balancer] for one of these algorithms (the [[pool]] algorithm key):
//
//   - round_robin: each usable backend in turn, weights ignored (slow start
//     still thins a ramping backend out).
//   - weighted_round_robin: nginx's smooth weighted round robin (nginx commit
//     "Upstream: smooth weighted round-robin balancing", 2012): weights 5,1,1
//     give a a b a c a a.
//   - least_conn: fewest (active+1)/weight, as HAProxy's leastconn; ties are
//     broken at random.
//   - least_time: lowest EWMA latency × (active+1) / weight, as nginx's
//     least_time; an idle backend's EWMA decays toward zero so a slow backend
//     is tried again later and not starved forever.
//   - random: weighted random.
//   - two_choices: the power of two random choices (Mitzenmacher, 2001): two
//     weighted random candidates, the one with fewer active/weight wins.
//   - ip_hash: the request's [Key] hashed over the configured weights; a
//     backend that is down loses only its own keys (nginx ip_hash
//     rehashing). Without a key, ip_hash and maglev pick at random.
//   - maglev: Maglev consistent hashing (Eisenbud et al., NSDI 2016) with a
//     65537-slot weighted lookup table, built from the configuration and
//     then repaired for backends that are down or ramping, so that a
//     backend going down moves only its own keys.
//   - resource: least_conn with each weight scaled by the backend agent's
//     reported percentage; without agent reports it is least_conn.
//
// # What every algorithm respects
//
// A backend takes a new request only while it is usable and has room: its
// State is Up (Draining keeps existing connections but takes no new ones;
// Disabled and Down take nothing), it is not ejected, its configured weight
// and its slow-start permille are above zero, and its active count is below
// max_connections (0: no limit). A retry passes the backends it already
// tried in an [Exclude] so that they are skipped. Pick returns nil when no
// backend qualifies.
//
// # Concurrency
//
// All methods of Backend and Balancer are safe for concurrent use. Pick takes
// no lock: it reads atomics and an immutable table. Tables (the smooth WRR
// period, cumulative weights, the Maglev lookup table) are rebuilt
// copy-on-write and swapped with an atomic pointer when a backend's state or
// weight changes. Backend setters mark the table stale; the next Pick
// rebuilds it (one goroutine does, the others keep using the old table and
// re-check every backend they return), or the caller rebuilds it ahead of
// time with [Balancer.Update] so that the cost stays off the request path.
// Pick does not allocate.
package balance
