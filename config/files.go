package config

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// checkFiles resolves relative file names against dir, storing absolute
// paths back into c, and checks the files exist and are usable.
func checkFiles(c *Config, dir string, e *errList) {
	abs := func(p *string) string {
		written := *p
		if written != "" && !filepath.IsAbs(written) {
			*p = filepath.Join(dir, written)
		}
		return written
	}
	if n := abs(&c.Cluster.SecretKeyFile); n != "" {
		checkSecretKey(e, "cluster.secret_key_file", n, c.Cluster.SecretKeyFile)
	}
	for i := range c.VRRP {
		r := &c.VRRP[i]
		if n := abs(&r.Notify); n != "" {
			checkFile(e, fmt.Sprintf("vrrp[%d].notify", i), n, r.Notify, true)
		}
		for j := range r.Tracks {
			if n := abs(&r.Tracks[j].Script); n != "" {
				checkFile(e, fmt.Sprintf("vrrp[%d].track[%d].script", i, j), n, r.Tracks[j].Script, true)
			}
		}
	}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		p := fmt.Sprintf("frontend[%d]", i)
		cert, key := abs(&f.TLSCert), abs(&f.TLSKey)
		okCert := cert != "" && checkFile(e, p+".tls_cert", cert, f.TLSCert, false)
		okKey := key != "" && checkFile(e, p+".tls_key", key, f.TLSKey, false)
		if okCert && okKey {
			if _, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey); err != nil {
				e.addErr(p+".tls_cert", err, "%q with tls_key %q: %v", cert, key, err)
			}
		}
		if f.AccessLog != "stdout" && !e.hasKey(p+".access_log") {
			if n := abs(&f.AccessLog); n != "" {
				checkLogFile(e, p+".access_log", n, f.AccessLog)
			}
		}
	}
}

// checkLogFile checks that a log file can be created or appended to: its
// directory exists, and the file, if it exists, is a regular file.
func checkLogFile(e *errList, key, written, path string) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		e.addErr(key, err, "%q: directory %q: %v", written, filepath.Dir(written), pathErrReason(err))
		return
	} else if !fi.IsDir() {
		e.add(key, "%q: %q is not a directory", written, filepath.Dir(written))
		return
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		e.add(key, "%q is not a regular file", written)
	}
}

// checkFile reports whether path is a regular file (executable if exec);
// written is the name as the configuration spells it, used in messages.
func checkFile(e *errList, key, written, path string, exec bool) bool {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		e.addErr(key, err, "%q: %v", written, pathErrReason(err))
	case !fi.Mode().IsRegular():
		e.add(key, "%q is not a regular file", written)
	case exec && fi.Mode().Perm()&0o111 == 0:
		e.add(key, "%q is not executable (chmod +x)", written)
	default:
		return true
	}
	return false
}

// checkSecretKey checks the file holds a base64 AES key for memberlist
// (16, 24 or 32 bytes: AES-128, AES-192, AES-256). The key is never shown.
func checkSecretKey(e *errList, key, written, path string) {
	if !checkFile(e, key, written, path, false) {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		e.addErr(key, err, "%q: %v", written, pathErrReason(err))
		return
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	switch {
	case err != nil:
		e.add(key, "%q does not hold base64 (make one with: head -c 32 /dev/urandom | base64)", written)
	case len(k) != 16 && len(k) != 24 && len(k) != 32:
		e.add(key, "%q holds a %d-byte key; want 16, 24 or 32 bytes (AES-128, -192 or -256)", written, len(k))
	}
}

// pathErrReason drops the path from an *fs.PathError ("no such file or directory").
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
