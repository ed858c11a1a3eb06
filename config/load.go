package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
)

// Parse decodes, defaults and validates the TOML in data; name (usually a
// base name such as "lbd.toml") starts every error message. It does not
// look at the file system: file names are kept as written. On failure it
// returns an *Errors listing every problem found.
func Parse(name string, data []byte) (*Config, error) {
	c, errs := parse(name, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads the file at path and parses it as Parse does, then checks the
// files it names, as `haproxy -c` does: tls_cert and tls_key must load as a
// key pair, notify and track scripts must be executable, secret_key_file
// must hold a base64 AES key. Relative file names are resolved against the
// directory of path and stored back as absolute paths, and Config.Path is
// set to the absolute path of the file. On failure it returns an *Errors.
func Load(path string) (*Config, error) {
	name := filepath.Base(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Errors{{File: name, Msg: err.Error(), err: err}}
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, &Errors{{File: name, Msg: err.Error(), err: err}}
	}
	c, errs := parse(name, data)
	if c != nil {
		c.Path = abs
		checkFiles(c, filepath.Dir(abs), errs)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse returns the decoded Config (nil after a syntax error) and every
// problem found.
func parse(name string, data []byte) (*Config, *errList) {
	errs := &errList{file: name}
	def, err := loadDefaults()
	if err != nil {
		errs.list = append(errs.list, &Error{File: name, Msg: err.Error(), err: err})
		return nil, errs
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		errs.list = append(errs.list, syntaxError(name, err))
		return nil, errs
	}
	errs.lines = scanLines(string(data))
	c := def.base
	d := newDecoder(errs, def.tmpl)
	d.defRaw = def.raw
	d.table("", m, reflect.ValueOf(&c).Elem())
	if c.Node.Name == "" && !d.bad["node.name"] {
		if h, err := os.Hostname(); err == nil {
			c.Node.Name = h
		}
	}
	validate(&c, d, errs)
	return &c, errs
}

// syntaxError turns a toml.ParseError into "syntax error: ..." at its line.
func syntaxError(name string, err error) *Error {
	e := &Error{File: name, Msg: "syntax error: " + err.Error(), err: err}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line = pe.Position.Line
		msg := strings.TrimSuffix(pe.Message, ".")
		if r := []rune(msg); len(r) > 1 && unicode.IsLower(r[1]) {
			r[0] = unicode.ToLower(r[0])
			msg = string(r)
		}
		e.Msg = "syntax error: " + msg
	}
	return e
}
