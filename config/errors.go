package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a configuration file.
type Error struct {
	File string // base name of the file, as given to Parse or Load
	Line int    // 1-based; 0 when the problem has no line (the file is unreadable)
	Key  string // key path such as "pool[1].backend[0].weight"; empty for syntax errors
	Msg  string // the complete message; it names Key, as `vrrp[0].vrid: 0 is out of range 1..255`

	err error // wrapped cause, if any (fs.ErrNotExist for a missing file)
}

// Error formats e as FILE:LINE: MSG, or FILE: MSG without a line.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Unwrap returns the cause, so errors.Is(err, fs.ErrNotExist) works.
func (e *Error) Unwrap() error { return e.err }

// Errors lists every problem of one file, sorted by line.
type Errors []*Error

// Error returns every message, one per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, x := range *e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.Error())
	}
	return b.String()
}

// Unwrap returns the list, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(*e))
	for i, x := range *e {
		out[i] = x
	}
	return out
}

// errList collects the errors of one file with the lines of their keys.
type errList struct {
	file  string
	lines lineMap
	list  Errors
}

// add records msg for key; the message reads "KEY: MSG".
func (l *errList) add(key, format string, args ...any) {
	l.addErr(key, nil, format, args...)
}

// addErr is add with a wrapped cause.
func (l *errList) addErr(key string, cause error, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	l.list = append(l.list, &Error{File: l.file, Line: l.lines.find(key), Key: key, Msg: msg, err: cause})
}

// unknown records an unknown key; the message reads `unknown key "KEY"`.
func (l *errList) unknown(key, hint string) {
	msg := fmt.Sprintf("unknown key %q", key)
	if hint != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", hint)
	}
	l.list = append(l.list, &Error{File: l.file, Line: l.lines.find(key), Key: key, Msg: msg})
}

// hasKey reports whether a problem was recorded for key.
func (l *errList) hasKey(key string) bool {
	for _, x := range l.list {
		if x.Key == key {
			return true
		}
	}
	return false
}

// err returns the sorted list, or nil when it is empty.
func (l *errList) err() error {
	if len(l.list) == 0 {
		return nil
	}
	sort.SliceStable(l.list, func(i, j int) bool { return l.list[i].Line < l.list[j].Line })
	out := l.list
	return &out
}
