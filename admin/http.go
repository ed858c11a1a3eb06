package admin

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
)

// NewHTTPHandler serves the read-only HTTP view of a node on admin.listen:
//
//	/status   the Status as JSON (what `lbctl status -json` prints)
//	/metrics  Prometheus text exposition format 0.0.4
//	/         a small stats page for people
//
// status is called once per request and must be safe for concurrent use.
func NewHTTPHandler(status func() Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		WriteMetrics(w, status())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statsPage.Execute(w, status()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

// vrrpStates are the values of lbd_vrrp_state, as keepalived's SNMP MIB
// numbers them.
var vrrpStates = map[string]int{"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}

// healthValues are the values of lbd_backend_health.
var healthValues = map[string]float64{"healthy": 0, "degraded": 1, "unhealthy": 2}

// WriteMetrics writes st in the Prometheus text format.
func WriteMetrics(w io.Writer, st Status) {
	m := &metricWriter{w: w}
	m.family("lbd_info", "gauge", "Build and node information.")
	m.sample("lbd_info", 1, "node", st.Node, "version", st.Version)
	m.family("lbd_config_reloads_total", "counter", "Configuration reloads applied.")
	m.sample("lbd_config_reloads_total", float64(st.Reloads))
	m.family("lbd_config_reload_errors_total", "counter", "Configuration reloads refused.")
	m.sample("lbd_config_reload_errors_total", float64(st.ReloadErrors))

	m.family("lbd_vrrp_state", "gauge", "VRRP state: 0 init, 1 backup, 2 master, 3 fault.")
	for _, in := range st.Instances {
		m.sample("lbd_vrrp_state", float64(vrrpStates[in.State]), "instance", in.Name)
	}
	m.family("lbd_vrrp_effective_priority", "gauge", "Priority after failing tracks.")
	for _, in := range st.Instances {
		m.sample("lbd_vrrp_effective_priority", float64(in.EffectivePriority), "instance", in.Name)
	}
	m.family("lbd_vrrp_events_total", "counter", "VRRP counters per instance and kind.")
	for _, in := range st.Instances {
		keys := make([]string, 0, len(in.Counters))
		for k := range in.Counters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.sample("lbd_vrrp_events_total", float64(in.Counters[k]), "instance", in.Name, "kind", k)
		}
	}
	m.family("lbd_frontend_active_connections", "gauge", "Open client connections.")
	for _, f := range st.Frontends {
		m.sample("lbd_frontend_active_connections", float64(f.Active), "frontend", f.Name)
	}
	m.family("lbd_frontend_connections_total", "counter", "Client connections accepted.")
	for _, f := range st.Frontends {
		m.sample("lbd_frontend_connections_total", float64(f.Total), "frontend", f.Name)
	}
	m.family("lbd_access_log_lines_total", "counter", "Access log lines, by outcome (written, dropped, error).")
	for _, f := range st.Frontends {
		if a := f.AccessLog; a != nil {
			m.sample("lbd_access_log_lines_total", float64(a.Lines), "frontend", f.Name, "outcome", "written")
			m.sample("lbd_access_log_lines_total", float64(a.Dropped), "frontend", f.Name, "outcome", "dropped")
			m.sample("lbd_access_log_lines_total", float64(a.Errors), "frontend", f.Name, "outcome", "error")
		}
	}
	m.family("lbd_backend_up", "gauge", "1 when the backend takes new traffic.")
	m.family("lbd_backend_active_connections", "gauge", "Open connections to the backend.")
	m.family("lbd_backend_bytes_total", "counter", "Bytes moved, by direction.")
	m.family("lbd_backend_health", "gauge", "Health: 0 healthy, 1 degraded, 2 unhealthy (active checks).")
	m.family("lbd_backend_health_transitions_total", "counter", "Health state changes.")
	m.family("lbd_backend_ejections_total", "counter", "Outlier ejections.")
	m.family("lbd_backend_check_latency_seconds", "gauge", "Latency of the last active check.")
	for _, p := range st.Pools {
		for _, b := range p.Backends {
			up := 0.0
			if b.State == "up" {
				up = 1
			}
			m.sample("lbd_backend_up", up, "pool", p.Name, "backend", b.Address)
			m.sample("lbd_backend_active_connections", float64(b.Active), "pool", p.Name, "backend", b.Address)
			m.sample("lbd_backend_bytes_total", float64(b.BytesIn), "pool", p.Name, "backend", b.Address, "direction", "in")
			m.sample("lbd_backend_bytes_total", float64(b.BytesOut), "pool", p.Name, "backend", b.Address, "direction", "out")
			if h, ok := healthValues[b.Health]; ok {
				m.sample("lbd_backend_health", h, "pool", p.Name, "backend", b.Address)
			}
			m.sample("lbd_backend_health_transitions_total", float64(b.HealthTransitions), "pool", p.Name, "backend", b.Address)
			m.sample("lbd_backend_ejections_total", float64(b.Ejections), "pool", p.Name, "backend", b.Address)
			if b.LastLatency > 0 {
				m.sample("lbd_backend_check_latency_seconds", b.LastLatency.Seconds(), "pool", p.Name, "backend", b.Address)
			}
		}
	}
	clusterMetrics(m, &st)
}

// clusterMetrics writes the [cluster]'s membership and replication.
func clusterMetrics(m *metricWriter, st *Status) {
	if len(st.Members) == 0 {
		return
	}
	m.family("lbd_cluster_member_up", "gauge", "1 when memberlist holds the member alive.")
	for _, mb := range st.Members {
		up := 0.0
		if mb.State == "alive" {
			up = 1
		}
		m.sample("lbd_cluster_member_up", up, "member", mb.Name, "addr", mb.Addr)
	}
	m.family("lbd_sync_peer_streaming", "gauge", "1 when this node streams its writes to the peer.")
	m.family("lbd_sync_peer_lag_seconds", "gauge", "Time the peer takes to apply this node's writes.")
	m.family("lbd_sync_peer_pending_records", "gauge", "Records sent or queued that the peer has not applied.")
	for _, p := range st.Peers {
		streaming := 0.0
		if p.State == "streaming" {
			streaming = 1
		}
		m.sample("lbd_sync_peer_streaming", streaming, "peer", p.Name)
		m.sample("lbd_sync_peer_lag_seconds", p.LagMs/1000, "peer", p.Name)
		m.sample("lbd_sync_peer_pending_records", float64(p.Pending), "peer", p.Name)
	}
}

type metricWriter struct{ w io.Writer }

func (m *metricWriter) family(name, typ, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one sample; labels come as name, value pairs.
func (m *metricWriter) sample(name string, v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
		}
		b.WriteByte('}')
	}
	fmt.Fprintf(m.w, "%s %g\n", b.String(), v)
}

var statsPage = template.Must(template.New("stats").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>lbd {{.Node}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#eee}</style></head>
<body><h1>lbd on {{.Node}}</h1>
<p>version {{.Version}} &middot; config {{.Config}} loaded {{.ConfigLoaded.Format "2006-01-02 15:04:05 MST"}}</p>
<h2>VRRP</h2><table><tr><th>instance</th><th>interface</th><th>vrid</th><th>state</th><th>priority</th><th>master</th><th>VIPs</th></tr>
{{range .Instances}}<tr><td>{{.Name}}</td><td>{{.Interface}}</td><td>{{.VRID}}</td><td>{{.State}}</td><td>{{.EffectivePriority}}/{{.Priority}}</td><td>{{.Master}}</td><td>{{range .VIPs}}{{.}} {{end}}</td></tr>
{{end}}</table>
<h2>Frontends</h2><table><tr><th>name</th><th>bind</th><th>mode</th><th>state</th><th>active</th><th>total</th></tr>
{{range .Frontends}}<tr><td>{{.Name}}</td><td>{{.Bind}}</td><td>{{.Mode}}</td><td>{{.State}}</td><td>{{.Active}}</td><td>{{.Total}}</td></tr>
{{end}}</table>
<h2>Pools</h2>{{range .Pools}}<h3>{{.Name}} ({{.Algorithm}})</h3>
<table><tr><th>backend</th><th>state</th><th>weight</th><th>active</th><th>total</th><th>bytes in</th><th>bytes out</th></tr>
{{range .Backends}}<tr><td>{{.Address}}</td><td>{{.State}}</td><td>{{.EffectiveWeight}}/{{.Weight}}</td><td>{{.Active}}</td><td>{{.Total}}</td><td>{{.BytesIn}}</td><td>{{.BytesOut}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))
