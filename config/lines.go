package config

import (
	"strconv"
	"strings"
)

// lineMap maps a key path such as "pool[1].backend[0].weight" to the line
// where it is written. BurntSushi/toml keeps no positions, so scanLines
// re-reads the source: it tracks [table] and [[array]] headers (counting
// array elements), dotted and quoted keys, inline tables and arrays (one
// path per element) and skips strings and comments.
type lineMap map[string]int

// find returns the line of path or, when the path is not written (a
// default, a missing key), the line of its nearest written ancestor; 0 if
// none is.
func (m lineMap) find(path string) int {
	for path != "" {
		if l, ok := m[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// joinKey appends key to the path prefix, quoting keys that are not bare.
func joinKey(prefix, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// indexKey appends an array index to path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isBareChar(byte(c)) || c > 0x7f {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// scanner walks TOML source that BurntSushi/toml has already accepted; on
// anything unexpected it gives up quietly rather than guess.
type scanner struct {
	s      string
	i      int
	line   int
	m      lineMap
	arrays map[string]int // element count of each [[array]] path
	depth  int            // nesting of arrays and inline tables
}

// maxDepth bounds the nesting of values whose paths are recorded: paths
// grow with depth, and no lbd key nests deeper.
const maxDepth = 8

func scanLines(src string) lineMap {
	sc := &scanner{s: src, line: 1, m: lineMap{}, arrays: map[string]int{}}
	prefix := ""
	for sc.i < len(sc.s) {
		start := sc.i
		sc.skipSpace()
		switch sc.peek() {
		case '\n':
			sc.line++
			sc.i++
		case '#':
			sc.skipComment()
		case '[':
			prefix = sc.header()
		case 0:
		default:
			sc.keyVal(prefix)
		}
		if sc.i == start {
			sc.i++ // always make progress
		}
	}
	return sc.m
}

func (sc *scanner) peek() byte {
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

func (sc *scanner) has(p string) bool { return strings.HasPrefix(sc.s[sc.i:], p) }

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t' || sc.s[sc.i] == '\r') {
		sc.i++
	}
}

// skipBlank skips spaces, newlines and comments (inside arrays and inline tables).
func (sc *scanner) skipBlank() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r':
			sc.i++
		case '\n':
			sc.line++
			sc.i++
		case '#':
			sc.skipComment()
		default:
			return
		}
	}
}

func (sc *scanner) skipComment() {
	for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
		sc.i++
	}
}

func (sc *scanner) mark(path string) {
	if path == "" {
		return
	}
	if _, ok := sc.m[path]; !ok {
		sc.m[path] = sc.line
	}
}

// header reads [a.b] or [[a.b]] and returns the table's path.
func (sc *scanner) header() string {
	array := sc.has("[[")
	if array {
		sc.i += 2
	} else {
		sc.i++
	}
	keys := sc.key()
	path := ""
	for j, k := range keys {
		path = joinKey(path, k)
		if array && j == len(keys)-1 {
			n := sc.arrays[path]
			sc.arrays[path] = n + 1
			sc.mark(path)
			path = indexKey(path, n)
		} else if n, ok := sc.arrays[path]; ok {
			path = indexKey(path, n-1)
		}
		sc.mark(path)
	}
	sc.skipComment() // the closing brackets and any comment
	return path
}

// keyVal reads key = value below prefix.
func (sc *scanner) keyVal(prefix string) {
	path := prefix
	for _, k := range sc.key() {
		if path != "" || sc.depth == 0 {
			path = joinKey(path, k)
		}
		sc.mark(path)
	}
	sc.skipSpace()
	if sc.peek() != '=' {
		return
	}
	sc.i++
	sc.skipSpace()
	sc.value(path)
}

// key reads a dotted key of bare and quoted parts.
func (sc *scanner) key() []string {
	var keys []string
	for {
		sc.skipSpace()
		switch c := sc.peek(); {
		case c == '"':
			start := sc.i
			sc.basicString()
			raw := sc.s[start:sc.i]
			if k, err := strconv.Unquote(raw); err == nil {
				keys = append(keys, k)
			} else {
				keys = append(keys, strings.Trim(raw, `"`))
			}
		case c == '\'':
			start := sc.i
			sc.literalString()
			keys = append(keys, strings.Trim(sc.s[start:sc.i], "'"))
		case isBareChar(c) || c >= 0x80:
			start := sc.i
			for sc.i < len(sc.s) && (isBareChar(sc.s[sc.i]) || sc.s[sc.i] >= 0x80) {
				sc.i++
			}
			keys = append(keys, sc.s[start:sc.i])
		default:
			return keys
		}
		sc.skipSpace()
		if sc.peek() != '.' {
			return keys
		}
		sc.i++
	}
}

// value reads one value; arrays and inline tables record their elements
// (down to maxDepth; an empty path records nothing).
func (sc *scanner) value(path string) {
	sc.depth++
	defer func() { sc.depth-- }()
	if sc.depth > maxDepth {
		path = ""
	}
	switch {
	case sc.has(`"""`):
		sc.multiString(`"""`, true)
	case sc.has(`'''`):
		sc.multiString(`'''`, false)
	case sc.peek() == '"':
		sc.basicString()
	case sc.peek() == '\'':
		sc.literalString()
	case sc.peek() == '[':
		sc.array(path)
	case sc.peek() == '{':
		sc.inlineTable(path)
	default: // number, boolean, date: up to a delimiter
		for sc.i < len(sc.s) && !strings.ContainsRune(",]}#\n", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}

func (sc *scanner) array(path string) {
	sc.i++ // [
	for n := 0; ; n++ {
		sc.skipBlank()
		if sc.peek() == ']' {
			sc.i++
			return
		}
		elem := ""
		if path != "" {
			elem = indexKey(path, n)
		}
		sc.mark(elem)
		start := sc.i
		sc.value(elem)
		sc.skipBlank()
		switch sc.peek() {
		case ',':
			sc.i++
		case ']':
			sc.i++
			return
		default:
			if sc.i == start {
				return
			}
		}
	}
}

func (sc *scanner) inlineTable(path string) {
	sc.i++ // {
	for {
		sc.skipBlank()
		if sc.peek() == '}' {
			sc.i++
			return
		}
		start := sc.i
		sc.keyVal(path)
		sc.skipBlank()
		switch sc.peek() {
		case ',':
			sc.i++
		case '}':
			sc.i++
			return
		default:
			if sc.i == start {
				return
			}
		}
	}
}

func (sc *scanner) basicString() {
	sc.i++ // "
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case '\\':
			sc.i += 2
		case '"':
			sc.i++
			return
		case '\n':
			return
		default:
			sc.i++
		}
	}
	sc.i = min(sc.i, len(sc.s))
}

func (sc *scanner) literalString() {
	sc.i++ // '
	for sc.i < len(sc.s) && sc.s[sc.i] != '\'' && sc.s[sc.i] != '\n' {
		sc.i++
	}
	if sc.peek() == '\'' {
		sc.i++
	}
}

// multiString skips a multi-line string (delim is three quotes), counting
// its newlines; up to two quotes may directly precede the closing delimiter.
func (sc *scanner) multiString(delim string, escapes bool) {
	sc.i += 3
	for sc.i < len(sc.s) {
		switch {
		case escapes && sc.s[sc.i] == '\\':
			sc.i++
			if sc.peek() == '\n' {
				sc.line++
			}
			sc.i++
		case sc.has(delim):
			sc.i += 3
			for k := 0; k < 2 && sc.peek() == delim[0]; k++ {
				sc.i++
			}
			return
		default:
			if sc.s[sc.i] == '\n' {
				sc.line++
			}
			sc.i++
		}
	}
	sc.i = min(sc.i, len(sc.s))
}
