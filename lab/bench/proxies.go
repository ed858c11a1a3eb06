package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Names of the rows. "direct" is the client talking to the backend.
const (
	direct        = "direct"
	haproxySplice = "haproxy-splice"
	haproxyPlain  = "haproxy"
	nginxName     = "nginx"
	lbdName       = "lbd"
)

// route is one frontend every proxy of a part serves: a name, a mode
// ("tcp" or "http") and the backends behind it.
type route struct {
	name, mode string
	backends   []string // host:port
}

// target is one row of a part: a running proxy (or direct) and the address
// of each route on it.
type target struct {
	name  string
	p     *proc             // nil for direct
	addrs map[string]string // route name → host:port to connect to
	// workers reports whether the proxy's work is done by descendants of
	// p (nginx under unshare) rather than p itself.
	workers bool
}

// cpu returns the CPU time used so far by the proxy: its main process (for
// lbd, not the VRRP child), and for nginx its master and worker.
func (t *target) cpu() (float64, error) {
	if t.p == nil {
		return 0, nil
	}
	pids := []int{t.p.pid()}
	if t.workers {
		for i := 0; i < len(pids); i++ {
			kids, err := Children(pids[i])
			if err != nil {
				return 0, err
			}
			pids = append(pids, kids...)
		}
	}
	var sum float64
	for _, pid := range pids {
		d, err := CPUTime(pid)
		if err != nil {
			return 0, err
		}
		sum += d.Seconds()
	}
	return sum, nil
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func listenAddrs(routes []route) (map[string]string, error) {
	addrs := make(map[string]string, len(routes))
	for _, r := range routes {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[r.name] = a
	}
	return addrs, nil
}

// directTarget is the row without a proxy: the first backend of each route.
func directTarget(routes []route) *target {
	t := &target{name: direct, addrs: map[string]string{}}
	for _, r := range routes {
		t.addrs[r.name] = r.backends[0]
	}
	return t
}

// startTarget writes the proxy's configuration into dir/name, starts it on
// cpu and waits until every route listens.
func startTarget(ctx context.Context, name string, o *Options, fdLimit int, dir string, routes []route) (*target, error) {
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	// nginx workers run as nobody and need to reach their temp paths.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	addrs, err := listenAddrs(routes)
	if err != nil {
		return nil, err
	}
	var conf string
	var argv []string
	t := &target{name: name, addrs: addrs}
	switch name {
	case lbdName:
		conf = lbdConfig(d, routes, addrs)
		argv = []string{filepath.Join(o.Bin, "lbd"), "-config", filepath.Join(d, "lbd.toml"), "-log-level", "warn"}
	case haproxyPlain, haproxySplice:
		conf = haproxyConfig(routes, addrs, name == haproxySplice, fdLimit)
		argv = []string{o.HAProxy, "-db", "-f", filepath.Join(d, "haproxy.cfg")}
	case nginxName:
		conf = nginxConfig(d, routes, addrs, fdLimit)
		// nginx's worker would outlive a killed benchmark (only the master
		// gets PR_SET_PDEATHSIG): in a PID namespace of its own, the
		// kernel kills the worker when the master, its init, dies.
		argv = []string{"unshare", "--pid", "--fork", "--kill-child",
			o.Nginx, "-c", filepath.Join(d, "nginx.conf"), "-p", d, "-g", "daemon off;"}
		t.workers = true
	default:
		return nil, fmt.Errorf("bench: unknown proxy %q", name)
	}
	file := map[string]string{lbdName: "lbd.toml", haproxyPlain: "haproxy.cfg", haproxySplice: "haproxy.cfg", nginxName: "nginx.conf"}[name]
	if err := os.WriteFile(filepath.Join(d, file), []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	p, err := startProc(name, o.ProxyCPU, argv...)
	if err != nil {
		return nil, err
	}
	t.p = p
	for _, r := range routes {
		if err := p.waitListening(ctx, addrs[r.name]); err != nil {
			p.stop()
			return nil, err
		}
	}
	return t, nil
}

// lbdConfig is an lbd.toml with one frontend and one round-robin pool per
// route; everything else is lbd's default.
func lbdConfig(dir string, routes []route, addrs map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[node]\nname = \"bench\"\nadmin_socket = %q\nstate_dir = %q\n", filepath.Join(dir, "lbd.sock"), filepath.Join(dir, "state"))
	for _, r := range routes {
		fmt.Fprintf(&b, "\n[[frontend]]\nname = %q\nbind = %q\nmode = %q\ndefault_pool = %q\nmax_connections = 100000\n",
			r.name, addrs[r.name], r.mode, r.name)
	}
	for _, r := range routes {
		fmt.Fprintf(&b, "\n[[pool]]\nname = %q\nalgorithm = \"round_robin\"\n", r.name)
		for _, be := range r.backends {
			fmt.Fprintf(&b, "  [[pool.backend]]\n  address = %q\n", be)
		}
	}
	return b.String()
}

// haproxyConfig is the HAProxy peer of MEASURING.md: one thread, keep-alive
// and `http-reuse always` in http mode, splice both ways when asked; as
// many connections as the open file limit allows (two sockets each, and
// two descriptors per splice pipe: HAProxy refuses to start when its
// maximum exceeds the limit).
func haproxyConfig(routes []route, addrs map[string]string, splice bool, fdLimit int) string {
	var b strings.Builder
	const maxpipes = 1000
	maxconn := max(100, (fdLimit-fdReserve)/2)
	if splice {
		maxconn = max(100, (fdLimit-fdReserve-2*maxpipes)/2)
	}
	fmt.Fprintf(&b, "global\n  nbthread 1\n  maxconn %d\n", maxconn)
	if splice {
		fmt.Fprintf(&b, "  maxpipes %d\n", maxpipes)
	}
	fmt.Fprintf(&b, "\ndefaults\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  maxconn %d\n", maxconn)
	if splice {
		b.WriteString("  option splice-request\n  option splice-response\n")
	}
	for _, r := range routes {
		fmt.Fprintf(&b, "\nlisten %s\n  bind %s\n  mode %s\n  balance roundrobin\n", r.name, addrs[r.name], r.mode)
		if r.mode == "http" {
			b.WriteString("  option http-keep-alive\n  http-reuse always\n")
		}
		for i, be := range r.backends {
			fmt.Fprintf(&b, "  server s%d %s\n", i+1, be)
		}
	}
	return b.String()
}

// nginxConfig is the nginx peer of MEASURING.md: one worker, upstream
// keep-alive (512 idle connections), HTTP/1.1 to the backends. Its buffers
// hold a 64 KiB response, so nothing is written to temp files.
func nginxConfig(dir string, routes []route, addrs map[string]string, fdLimit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes 1;\nworker_rlimit_nofile %d;\npid %s;\nerror_log %s warn;\n",
		fdLimit, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	fmt.Fprintf(&b, "events {\n  worker_connections %d;\n}\nhttp {\n  access_log off;\n", max(100, (fdLimit-200)/2))
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s;\n", p, filepath.Join(dir, p+"_temp"))
	}
	b.WriteString("  proxy_buffer_size 16k;\n  proxy_buffers 8 16k;\n  proxy_busy_buffers_size 32k;\n  proxy_max_temp_file_size 0;\n")
	for _, r := range routes {
		if r.mode != "http" {
			continue
		}
		fmt.Fprintf(&b, "  upstream %s {\n", r.name)
		for _, be := range r.backends {
			fmt.Fprintf(&b, "    server %s;\n", be)
		}
		fmt.Fprintf(&b, "    keepalive 512;\n  }\n  server {\n    listen %s;\n    location / {\n", addrs[r.name])
		fmt.Fprintf(&b, "      proxy_pass http://%s;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n  }\n", r.name)
	}
	b.WriteString("}\n")
	return b.String()
}
