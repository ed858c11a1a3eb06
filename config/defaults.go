package config

import (
	_ "embed"
	"fmt"
	"reflect"
	"sync"

	"github.com/BurntSushi/toml"
)

//go:embed defaults.toml
var defaultsTOML []byte

// DefaultsTOML returns defaults.toml, the single place where lbd's default
// values are written (what `lbd -print-defaults` prints). Each array
// element in it holds the defaults of every element of that array.
func DefaultsTOML() []byte {
	return append([]byte(nil), defaultsTOML...)
}

// defaults is defaults.toml decoded: the starting Config and the starting
// value of each array element type.
type defaults struct {
	base Config
	tmpl map[reflect.Type]reflect.Value
	raw  map[string]string // durations as written, by path without indexes
}

var loadDefaults = sync.OnceValues(func() (*defaults, error) {
	var m map[string]any
	if _, err := toml.Decode(string(defaultsTOML), &m); err != nil {
		return nil, fmt.Errorf("config: defaults.toml: %w", err)
	}
	errs := &errList{file: "defaults.toml", lines: scanLines(string(defaultsTOML))}
	var c Config
	dec := newDecoder(errs, nil)
	dec.table("", m, reflect.ValueOf(&c).Elem())
	if err := errs.err(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(c.VRRP) != 1 || len(c.VRRP[0].Tracks) != 1 || len(c.Frontends) != 1 ||
		len(c.Pools) != 1 || len(c.Pools[0].Backends) != 1 {
		return nil, fmt.Errorf("config: defaults.toml: want exactly one element in each array")
	}
	vrrp, track := c.VRRP[0], c.VRRP[0].Tracks[0]
	vrrp.Tracks = nil
	fe := c.Frontends[0]
	fe.Routes = nil
	pool, backend := c.Pools[0], c.Pools[0].Backends[0]
	pool.Backends = nil
	d := &defaults{base: Config{Node: c.Node, Admin: c.Admin, Cluster: c.Cluster},
		tmpl: map[reflect.Type]reflect.Value{}, raw: map[string]string{}}
	for k, s := range dec.raw {
		d.raw[stripIndexes(k)] = s
	}
	for _, v := range []any{vrrp, track, fe, pool, backend} {
		d.tmpl[reflect.TypeOf(v)] = reflect.ValueOf(v)
	}
	return d, nil
})
