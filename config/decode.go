package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeFor[Duration]()
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
)

// decoder fills Go values from the map that toml.Decode produced, checking
// every key against the struct tags and every value against the Go type.
// Unlike toml's typed Decode it does not stop at the first problem.
type decoder struct {
	errs    *errList
	defined map[string]bool                // every key path written in the file
	bad     map[string]bool                // key paths whose value could not be decoded
	raw     map[string]string              // durations as written, for messages
	defRaw  map[string]string              // durations as defaults.toml writes them, by stripIndexes path
	tmpl    map[reflect.Type]reflect.Value // defaults for new array elements
}

func newDecoder(errs *errList, tmpl map[reflect.Type]reflect.Value) *decoder {
	return &decoder{errs: errs, defined: map[string]bool{}, bad: map[string]bool{},
		raw: map[string]string{}, tmpl: tmpl}
}

func (d *decoder) fail(path, format string, args ...any) {
	d.bad[path] = true
	d.errs.add(path, format, args...)
}

// value decodes v into rv, which must be settable.
func (d *decoder) value(path string, v any, rv reflect.Value) {
	switch rv.Type() {
	case durationType:
		d.duration(path, v, rv)
		return
	case addrType:
		d.addr(path, v, rv)
		return
	case prefixType:
		d.prefix(path, v, rv)
		return
	}
	switch rv.Kind() {
	case reflect.String:
		if s, ok := v.(string); ok {
			rv.SetString(s)
		} else {
			d.wrongType(path, "a string", v)
		}
	case reflect.Bool:
		if b, ok := v.(bool); ok {
			rv.SetBool(b)
		} else {
			d.wrongType(path, "a boolean (true or false)", v)
		}
	case reflect.Int:
		n, ok := v.(int64)
		switch {
		case !ok:
			d.wrongType(path, "an integer", v)
		case rv.OverflowInt(n):
			d.fail(path, "%d is too large", n)
		default:
			rv.SetInt(n)
		}
	case reflect.Slice:
		d.slice(path, v, rv)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.wrongType(path, "a table", v)
			return
		}
		d.table(path, m, rv)
	default:
		d.fail(path, "internal error: cannot decode into %s", rv.Type())
	}
}

// table decodes the keys of m into the fields of the struct rv.
func (d *decoder) table(path string, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	for _, k := range sortedKeys(m) {
		kp := joinKey(path, k)
		d.defined[kp] = true
		i, ok := fields[k]
		if !ok {
			d.bad[kp] = true
			hint := suggest(k, fields)
			if _, both := m[hint]; hint != "" && !both {
				d.bad[joinKey(path, hint)] = true // not "missing" as well
			}
			d.errs.unknown(kp, hint)
			continue
		}
		d.value(kp, m[k], rv.Field(i))
	}
}

// slice decodes an array into rv; arrays of tables start each element
// from the defaults of its type.
func (d *decoder) slice(path string, v any, rv reflect.Value) {
	var elems []any
	switch a := v.(type) {
	case []any:
		elems = a
	case []map[string]any:
		for _, m := range a {
			elems = append(elems, m)
		}
	default:
		if isTable(rv.Type().Elem()) {
			d.wrongType(path, fmt.Sprintf("an array of tables ([[%s]])", stripIndexes(path)), v)
		} else {
			d.wrongType(path, "an array", v)
		}
		return
	}
	et := rv.Type().Elem()
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	for i, e := range elems {
		ep := indexKey(path, i)
		if t, ok := d.tmpl[et]; ok {
			out.Index(i).Set(t)
		}
		d.value(ep, e, out.Index(i))
	}
	rv.Set(out)
}

func (d *decoder) duration(path string, v any, rv reflect.Value) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(path, `a duration string such as "5s"`, v)
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.fail(path, `%q is not a duration (write it as Go does: "100ms", "5s", "1m30s", "1h")`, s)
	case t < 0:
		d.fail(path, "%q is negative", s)
	default:
		rv.SetInt(int64(t))
		d.raw[path] = s
	}
}

func (d *decoder) addr(path string, v any, rv reflect.Value) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(path, "an IP address string", v)
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.fail(path, "%q is not an IP address", s)
		return
	}
	rv.Set(reflect.ValueOf(a))
}

// prefix accepts "ADDR/BITS", keeping the address bits, or a bare
// address, taken as a host prefix (/32 or /128).
func (d *decoder) prefix(path string, v any, rv reflect.Value) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(path, `an address string such as "198.18.0.100/24"`, v)
		return
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			d.fail(path, `%q is not an IP address with prefix length (such as "198.18.0.100/24")`, s)
			return
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	rv.Set(reflect.ValueOf(p))
}

func (d *decoder) wrongType(path, want string, v any) {
	d.fail(path, "expected %s, got %s", want, describe(v))
}

// describe names a decoded TOML value's type, with the value if short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return "string " + strconv.Quote(x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case time.Time:
		return "datetime " + x.Format(time.RFC3339)
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// isTable reports whether t is decoded from a TOML table.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != addrType && t != prefixType
}

// tomlFields maps the toml tag of each field of t to its index.
func tomlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stripIndexes turns "pool[1].backend" into "pool.backend".
func stripIndexes(path string) string {
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// suggest returns the known key closest to an unknown one, if it is close.
func suggest(k string, fields map[string]int) string {
	best, dist := "", 3
	for _, f := range sortedKeys(fields) {
		if strings.EqualFold(k, f) {
			return f // keys are case sensitive
		}
		if n := editDistance(k, f); n < dist && n <= len(f)/2 {
			best, dist = f, n
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
