package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

func TestLoadExample(t *testing.T) {
	c, err := Load("../docs/examples/lbd.toml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, err := filepath.Abs("../docs/examples")
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Path, Node, Secret         string
		VRID, Priority, Tracks     int
		Advert, TrackInterval      time.Duration
		VIPs                       string
		Notify, Script             string
		TrackPool                  string
		TLSCert, TLSKey, RoutePool string
		Sticky                     string
		Weight2, MaxConns2         int
		HashKey, HealthDB          string
		DBBackends                 int
	}
	r, https, app := c.VRRP[0], c.Frontends[0], c.Pools[0]
	got := summary{
		Path: c.Path, Node: c.Node.Name, Secret: c.Cluster.SecretKeyFile,
		VRID: r.VRID, Priority: r.Priority, Tracks: len(r.Tracks),
		Advert: r.AdvertInterval.D(), TrackInterval: r.Tracks[2].Interval.D(),
		VIPs: fmt.Sprint(r.VIPs), Notify: r.Notify, Script: r.Tracks[2].Script, TrackPool: r.Tracks[1].Pool,
		TLSCert: https.TLSCert, TLSKey: https.TLSKey, RoutePool: https.Routes[0].Pool,
		Sticky: app.Sticky.Cookie, Weight2: app.Backends[1].Weight, MaxConns2: app.Backends[1].MaxConnections,
		HashKey: c.Pools[1].HashKey, HealthDB: c.Pools[2].Health.Type, DBBackends: len(c.Pools[2].Backends),
	}
	want := summary{
		Path: filepath.Join(dir, "lbd.toml"), Node: "lb1", Secret: filepath.Join(dir, "cluster.key"),
		VRID: 51, Priority: 150, Tracks: 3,
		Advert: 100 * time.Millisecond, TrackInterval: 2 * time.Second,
		VIPs:   "[198.18.0.100/24]",
		Notify: filepath.Join(dir, "notify.sh"), Script: filepath.Join(dir, "check.sh"), TrackPool: "app",
		TLSCert: filepath.Join(dir, "tls/site.pem"), TLSKey: filepath.Join(dir, "tls/site.key"), RoutePool: "api",
		Sticky: "LBSRV", Weight2: 2, MaxConns2: 500,
		HashKey: "header:X-User-ID", HealthDB: "tcp", DBBackends: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(example) (-want +got):\n%s", diff)
	}
}

// TestDefaults checks that array elements start from their section of
// defaults.toml and that keys left out take their defaults.
func TestDefaults(t *testing.T) {
	src := `
[[vrrp]]
name = "web"
interface = "eth0"
vrid = 1
vips = ["198.18.0.100"]
  [[vrrp.track]]
  script = "/bin/true"
[[pool]]
name = "a"
  [[pool.backend]]
  address = "198.18.0.21:80"
  weight = 7
[[pool]]
name = "b"
  [[pool.backend]]
  address = "198.18.0.22:80"
`
	c, err := Parse("lbd.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	host, _ := os.Hostname()
	r, tr, b := c.VRRP[0], c.VRRP[0].Tracks[0], c.Pools[1]
	got := []any{c.Node.Name, c.Node.AdminSocket, c.Node.StateDir, c.Cluster.Bind,
		r.Priority, r.AdvertInterval.D(), r.Preempt, r.Version, r.GARPRepeat, r.GARPInterval.D(), r.NotifyTimeout.D(),
		r.VIPs[0].String(), tr.Weight, tr.Interval.D(), tr.Timeout.D(), tr.Rise, tr.Fall,
		b.Algorithm, b.Retries, b.ConnectTimeout.D(), b.Panic, b.Protocol, b.Health.Type, b.Health.ExpectStatus,
		b.Sticky.TTL.D(), b.Sticky.MaxEntries, b.Outlier.MaxEjectionTime.D(), b.Backends[0].Weight,
		c.Pools[0].Backends[0].Weight}
	want := []any{host, "/run/lbd/lbd.sock", "/var/lib/lbd", "",
		100, time.Second, true, 3, 5, 10 * time.Millisecond, 5 * time.Second,
		"198.18.0.100/32", 0, 2 * time.Second, 2 * time.Second, 1, 1,
		"round_robin", 1, 5 * time.Second, "fail", "http/1.1", "none", "2xx",
		time.Hour, 1000000, 300 * time.Second, 1,
		7}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestDefaultsComplete checks that defaults.toml, the one place defaults
// are written, names every key except those that must be given.
func TestDefaultsComplete(t *testing.T) {
	var m map[string]any
	if _, err := toml.Decode(string(DefaultsTOML()), &m); err != nil {
		t.Fatal(err)
	}
	var missing []string
	var walk func(prefix string, typ reflect.Type, m map[string]any)
	walk = func(prefix string, typ reflect.Type, m map[string]any) {
		for _, k := range sortedKeys(tomlFields(typ)) {
			f := typ.Field(tomlFields(typ)[k])
			v, ok := m[k]
			ft := f.Type
			if ft.Kind() == reflect.Slice && isTable(ft.Elem()) {
				ft = ft.Elem()
				if a, isArr := v.([]map[string]any); isArr && len(a) == 1 {
					v = a[0]
				}
			}
			if isTable(ft) && ft != durationType {
				sub, _ := v.(map[string]any)
				walk(joinKey(prefix, k), ft, sub)
			} else if !ok {
				missing = append(missing, joinKey(prefix, k))
			}
		}
	}
	walk("", reflect.TypeFor[Config](), m)
	want := []string{"node.name", "vrrp.name", "vrrp.interface", "vrrp.vrid", "vrrp.vips",
		"vrrp.track.interface", "vrrp.track.pool", "vrrp.track.script",
		"frontend.name", "frontend.bind", "frontend.mode",
		"frontend.route.host", "frontend.route.path_prefix", "frontend.route.header", "frontend.route.pool",
		"pool.name", "pool.backend.address"}
	slices.Sort(want)
	slices.Sort(missing)
	if diff := cmp.Diff(want, missing); diff != "" {
		t.Errorf("keys without a default in defaults.toml (-want +got):\n%s", diff)
	}
}

func TestErrorsAPI(t *testing.T) {
	_, err := Load("testdata/no-such-file.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing file) = %v, want an error matching fs.ErrNotExist", err)
	}
	_, err = Parse("x.toml", []byte("[[vrrp]]\nvrid = \"1\"\n\n[nod]\n"))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse returned %T, want *Errors", err)
	}
	want := Errors{
		{File: "x.toml", Line: 1, Key: "vrrp[0].name", Msg: "vrrp[0].name: missing (required)"},
		{File: "x.toml", Line: 1, Key: "vrrp[0].interface", Msg: "vrrp[0].interface: missing (required)"},
		{File: "x.toml", Line: 1, Key: "vrrp[0].vips", Msg: "vrrp[0].vips: missing (required)"},
		{File: "x.toml", Line: 2, Key: "vrrp[0].vrid", Msg: `vrrp[0].vrid: expected an integer, got string "1"`},
		{File: "x.toml", Line: 4, Key: "nod", Msg: `unknown key "nod" (did you mean "node"?)`},
	}
	if diff := cmp.Diff(want, *errs, cmp.AllowUnexported(Error{})); diff != "" {
		t.Errorf("Parse errors (-want +got):\n%s", diff)
	}
	if got, want := (*errs)[4].Error(), `x.toml:4: unknown key "nod" (did you mean "node"?)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&Error{File: "x.toml", Msg: "boom"}).Error(); got != "x.toml: boom" {
		t.Errorf("Error() without a line = %q", got)
	}
}

// TestParseKeepsFileNames checks that Parse leaves the file system alone.
func TestParseKeepsFileNames(t *testing.T) {
	src := `
[[frontend]]
name = "https"
bind = ":443"
mode = "http"
default_pool = "app"
tls_cert = "tls/missing.pem"
tls_key = "tls/missing.key"
[[pool]]
name = "app"
  [[pool.backend]]
  address = "app.example.com:8080"
`
	c, err := Parse("lbd.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Frontends[0].TLSCert != "tls/missing.pem" || c.Path != "" {
		t.Errorf("Parse changed names: tls_cert %q, Path %q", c.Frontends[0].TLSCert, c.Path)
	}
}

// TestAccessLogPath: a relative access_log is resolved against the
// configuration's directory, "stdout" and empty stay as they are.
func TestAccessLogPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := ""
	for i, l := range []string{"logs/web.log", "stdout", ""} {
		src += fmt.Sprintf("[[frontend]]\nname = \"f%d\"\nbind = \":%d\"\nmode = \"http\"\ndefault_pool = \"app\"\naccess_log = %q\n", i, 80+i, l)
	}
	src += "[[pool]]\nname = \"app\"\nprotocol = \"h2c\"\n  [[pool.backend]]\n  address = \"198.18.0.21:50051\"\n"
	path := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Frontends[0].AccessLog, c.Frontends[1].AccessLog, c.Frontends[2].AccessLog, c.Pools[0].Protocol}
	want := []string{filepath.Join(dir, "logs/web.log"), "stdout", "", "h2c"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access_log and protocol (-want +got):\n%s", diff)
	}
}

func TestScanLines(t *testing.T) {
	src := strings.Join([]string{
		`# comment [[pool]]`,          // 1
		`title = "a # not a comment"`, // 2
		`[[pool]]`,                    // 3
		`name = 'x'`,                  // 4
		`  [pool.health]`,             // 5
		`  "quoted.key" = 1`,          // 6
		`  [[pool.backend]]`,          // 7
		`  address = """`,             // 8
		`[[pool]]`,                    // 9
		`"""`,                         // 10
		`[[pool]] # second`,           // 11
		`list = [`,                    // 12
		`  1, # one`,                  // 13
		`  [2, 3],`,                   // 14
		`  { a = 1,`,                  // 15
		`    b.c = 2 },`,              // 16
		`]`,                           // 17
		`  [[pool.backend]]`,          // 18
		`  [[pool.backend]]`,          // 19
		`  weight = 3`,                // 20
		`[ "node" . 'x' ]`,            // 21
		`multi = '''it's'''`,          // 22
		`after = 1`,                   // 23
	}, "\n")
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Fatalf("test input is not TOML: %v", err)
	}
	m := scanLines(src)
	tests := map[string]int{
		"title": 2, "pool": 3, "pool[0]": 3, "pool[0].name": 4, "pool[0].health": 5,
		`pool[0].health."quoted.key"`: 6, "pool[0].backend[0]": 7, "pool[0].backend[0].address": 8,
		"pool[1]": 11, "pool[1].list": 12, "pool[1].list[0]": 13, "pool[1].list[1]": 14,
		"pool[1].list[1][1]": 14, "pool[1].list[2]": 15, "pool[1].list[2].a": 15, "pool[1].list[2].b.c": 16,
		"pool[1].backend[0]": 18, "pool[1].backend[1]": 19, "pool[1].backend[1].weight": 20,
		"node.x": 21, "node.x.multi": 22, "node.x.after": 23,
		"pool[1].backend[1].nothing": 19, "pool[5]": 3, "nothing": 0,
	}
	got := map[string]int{}
	for k := range tests {
		got[k] = m.find(k)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}
