// Package bench is lbd's proxy benchmark, `make bench` (cmd/lbdbench): lbd
// side by side with Debian's HAProxy and nginx and a "direct" row (no
// proxy), all on loopback, following docs/MEASURING.md of the design:
//
//   - the proxy under test runs alone on cpu0 (`taskset -c 0`); the load
//     generators (this process and wrk) and the backends run on cpu1;
//   - repetitions are interleaved (A B C A B C …) and the figures are
//     medians; ratios are medians of the ratios taken within each round;
//   - the steadiest figure is the proxy's CPU time per unit of work:
//     utime+stime of its PID from /proc/PID/stat (proc(5)) before and after.
//
// The parts are L4 (bulk throughput and connection rate through mode tcp
// frontends), mem (RSS per idle proxied connection) and L7 (wrk against
// mode http frontends). Every process the benchmark starts runs in a
// process group of its own, dies with the benchmark (PR_SET_PDEATHSIG), and
// is stopped before Run returns, on errors too.
package bench
