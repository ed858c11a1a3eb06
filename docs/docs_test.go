package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"lbd/config"
)

// exampleFiles are copied beside each loaded block, so blocks may name
// them as docs/examples/lbd.toml does.
var exampleFiles = []string{"cluster.key", "notify.sh", "check.sh", "tls/site.pem", "tls/site.key"}

// TestTOMLBlocks loads every ```toml block of every docs/*.md file.
func TestTOMLBlocks(t *testing.T) {
	mds, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, md := range mds {
		blocks, err := tomlBlocks(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			n++
			t.Run(fmt.Sprintf("%s:%d", md, b.line), func(t *testing.T) {
				if err := loadBlock(t.TempDir(), b.text); err != nil {
					t.Errorf("the ```toml block at %s:%d does not load:\n%v", md, b.line, err)
				}
			})
		}
	}
	if n == 0 {
		t.Error("found no ```toml blocks in docs/*.md")
	}
}

// TestBrokenBlockFails makes sure the check above can fail.
func TestBrokenBlockFails(t *testing.T) {
	blocks, err := tomlBlocks("testdata/broken.md")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		if err := loadBlock(t.TempDir(), b.text); err != nil {
			got = append(got, fmt.Sprintf("%d: %v", b.line, err))
		}
	}
	want := []string{
		`6: lbd.toml:4: vrrp[0].vrid: 0 is out of range 1..255`,
		`14: lbd.toml:1: syntax error: expected '.' or '=', but got 'x' instead`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors of testdata/broken.md (-want +got):\n%s", diff)
	}
}

type block struct {
	line int // of the first line inside the fence
	text string
}

// tomlBlocks returns the ```toml fenced blocks of a Markdown file.
func tomlBlocks(path string) ([]block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []block
	var cur *block
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```toml":
			cur = &block{line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unterminated ```toml block", path, cur.line-1)
	}
	return out, sc.Err()
}

// loadBlock writes text to dir/lbd.toml beside the example files and loads it.
func loadBlock(dir, text string) error {
	for _, f := range exampleFiles {
		src := filepath.Join("examples", f)
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, "lbd.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	_, err := config.Load(path)
	return err
}

// TestReferenceKeys checks that configuration.md documents every key of
// config.Config, and that its Default column agrees with defaults.toml.
func TestReferenceKeys(t *testing.T) {
	rows, err := referenceRows("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var defaults map[string]any
	if _, err := toml.Decode(string(config.DefaultsTOML()), &defaults); err != nil {
		t.Fatal(err)
	}
	flat := map[string]string{}
	flatten("", defaults, flat)
	var documented []string
	for key, def := range rows {
		documented = append(documented, key)
		want, hasDefault := flat[key]
		switch {
		case hasDefault && def != "`"+want+"`":
			t.Errorf("configuration.md: %s: default %s, but defaults.toml says `%s`", key, def, want)
		case !hasDefault && strings.HasPrefix(def, "`"):
			t.Errorf("configuration.md: %s: default %s, but defaults.toml has none", key, def)
		}
	}
	var keys []string
	walk("", reflect.TypeFor[config.Config](), &keys)
	slices.Sort(keys)
	slices.Sort(documented)
	if diff := cmp.Diff(keys, documented); diff != "" {
		t.Errorf("keys in config.Config (-) and in the tables of configuration.md (+):\n%s", diff)
	}
}

// referenceRows maps the key of each table row "| `a.b` | type | default |"
// to its default cell.
func referenceRows(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
		if len(cells) < 4 {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := rows[key]; dup {
			return nil, fmt.Errorf("%s: %s is documented twice", path, key)
		}
		rows[key] = strings.TrimSpace(cells[3])
	}
	return rows, nil
}

// flatten renders each default value as TOML, keyed by its dotted path;
// arrays of tables contribute their single element.
func flatten(prefix string, m map[string]any, out map[string]string) {
	for k, v := range m {
		key := strings.TrimPrefix(prefix+"."+k, ".")
		switch x := v.(type) {
		case map[string]any:
			flatten(key, x, out)
		case []map[string]any:
			for _, e := range x {
				flatten(key, e, out)
			}
		case string:
			out[key] = strconv.Quote(x)
		case []any:
			out[key] = fmt.Sprint(x) // only empty arrays have defaults: []
		default:
			out[key] = fmt.Sprint(x)
		}
	}
}

// walk lists the dotted keys of the toml-tagged fields of t.
func walk(prefix string, t reflect.Type, out *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+name, ".")
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == "lbd/config" {
			walk(key, ft, out)
			continue
		}
		*out = append(*out, key)
	}
}
