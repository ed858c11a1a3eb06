// Package health judges the backends of one lbd pool and publishes the
// verdict on the pool's [*balance.Backend]s, which every balancing algorithm
// reads. It does not import the proxy; the node wires the two.
//
// # Active checks ([pool.health])
//
// Every backend is probed once per interval: "http" sends method path
// (Host: host, or the backend address) as one HTTP/1.1 request and expects
// a status in expect_status ("2xx", "200-399", "200,204") and, when set,
// expect_body as a substring of the first 64 KiB of the body (HAProxy's
// "http-check expect"); "tcp" connects and hangs up with a reset, as
// HAProxy's checks do, so that probes leave no TIME_WAIT sockets behind
// (on Linux, for IP addresses; "http" hangs up the same way); "tls"
// connects and completes a TLS handshake without verifying the
// certificate, as HAProxy's "check-ssl verify none" does; "none" runs no
// probes and every backend counts as healthy. Each probe uses a new
// connection and gives up after timeout. The first probe of each backend
// comes at a random point of the first interval, so that the probes of
// many backends spread out; later ones follow every interval with ±4 %
// jitter, rounded up to a hundredth of the interval so that probes due
// together share one wake-up. A probe that outlasts the interval is never
// overlapped: the next one starts at the next interval boundary after it
// ends. A slow probe delays only its own backend.
//
// One goroutine per pool keeps the probe times (a heap) and sleeps on a
// timerfd in Go's network poller until the next one. It makes a "tcp"
// check of an IP address itself, with a non-blocking connect(2) that on
// loopback and to a closed port is over when the call returns; a connect
// still under way, and every other check, goes on in a goroutine of its
// own. 1000 tcp checks a second cost about 3 % of one core
// (BenchmarkProbeCPU, docs/performance.md).
//
// Each backend follows the state machine of the seed article:
//
//	HEALTHY   --probe fails, fewer than fall in a row-->  DEGRADED (still in rotation)
//	DEGRADED  --next probe passes-->                      HEALTHY
//	HEALTHY/DEGRADED --fall failures in a row-->          UNHEALTHY (out of rotation, still probed)
//	UNHEALTHY --rise successes in a row-->                HEALTHY
//
// A backend starts HEALTHY and in rotation, but its first probe decides: if
// that one fails it goes UNHEALTHY at once (HAProxy's "init-state up"), so
// that a restarted lbd neither waits for probes before serving nor sends
// traffic to a dead backend for fall intervals. A backend whose
// [balance.Backend] is already Down when the pool is built (a reload) starts
// UNHEALTHY. UNHEALTHY sets the backend's state to [balance.StateDown], the
// other states to [balance.StateUp]; an operator's Draining or Disabled is
// left alone, and every probe puts an Up or Down that disagrees with the
// health state right again.
//
// # Passive outlier detection ([pool.outlier])
//
// The proxy calls [Pool.Report] after each request or connection. After
// consecutive_errors errors in a row (connect failures, resets, 5xx,
// timeouts) a backend is ejected ([balance.Backend.SetEjected]) for
// ejection_time × the number of its ejections, at most max_ejection_time,
// as Envoy's outlier detection does. The multiplier starts again from one
// once the backend has stayed in for max_ejection_time. At most
// floor(backends × max_ejection_percent / 100) backends are ejected at once,
// so a bad deploy cannot empty the pool: a pool of one with a percentage
// below 100 never ejects. Ejection is independent of the active checks.
//
// # Slow start (slow_start)
//
// When a backend returns to rotation (UNHEALTHY to HEALTHY, or the end of
// an ejection) and slow_start is set, its weight permille ramps from 100 to
// 1000 over slow_start ([balance.SlowStartPermille]), updated every
// slow_start/20, but at least once a second and at most every 10 ms. Every
// algorithm honours it through the backend's effective weight.
//
// # What the rest of lbd reads
//
// [Pool.Healthy] counts backends in rotation as far as health is concerned
// (not UNHEALTHY and not ejected; operator states do not count), for the
// proxy's panic setting. [Pool.Watch] delivers "the pool has at least one
// healthy backend" to a VRRP pool track. [Pool.Snapshot] is the status view.
// Each state change, ejection and availability change is one log line.
package health
