package httpproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lbd/proxy"
)

// testPKI is a CA and leaf certificates it signed, as PEM.
type testPKI struct {
	roots *x509.CertPool
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	caPEM []byte
}

func newPKI(t *testing.T) *testPKI {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lbd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{roots: x509.NewCertPool(), ca: ca, caKey: key,
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	p.roots.AddCert(ca)
	return p
}

// leaf returns a certificate for names and its key, as PEM.
func (p *testPKI) leaf(t *testing.T, serial int64, names ...string) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsFrontend starts a TLS frontend with two chains in one tls_cert:
// a.example.com (with the CA as intermediate) and *.b.example.com, their
// keys in tls_key in the other order.
func tlsFrontend(t *testing.T, b *backend, minVersion string) (*Frontend, *testPKI) {
	f, p, _ := tlsFrontendPools(t, b, minVersion)
	return f, p
}

func tlsFrontendPools(t *testing.T, b *backend, minVersion string) (*Frontend, *testPKI, proxy.Pools) {
	p := newPKI(t)
	certA, keyA := p.leaf(t, 2, "a.example.com")
	certB, keyB := p.leaf(t, 3, "*.b.example.com")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
	os.WriteFile(certFile, append(append(certA, p.caPEM...), certB...), 0o600)
	os.WriteFile(keyFile, append(keyB, keyA...), 0o600)
	f, pools := setup(t, frontendTOML("app", `tls_cert = "`+certFile+`"
tls_key = "`+keyFile+`"
tls_min_version = "`+minVersion+`"`)+`
  [[frontend.route]]
  path_prefix = "/nowhere"
  pool = "none"
[[pool]]
name = "app"
  [[pool.backend]]
  address = "{b0}"
[[pool]]
name = "none"
  [[pool.backend]]
  address = "{b0}"
  weight = 0
`, b)
	return f, p, pools
}

// servedName returns the first DNS name of the certificate f serves for
// sni, unverified.
func servedName(t *testing.T, f *Frontend, sni string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", f.Addr().String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames[0]
}

func TestTLSSNI(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, p := tlsFrontend(t, b, "1.2")
	for _, tt := range []struct{ sni, want string }{
		{"a.example.com", "a.example.com"},
		{"www.b.example.com", "*.b.example.com"},
		{"unknown.example.org", "a.example.com"}, // the first certificate
	} {
		t.Run(tt.sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", f.Addr().String(), &tls.Config{ServerName: tt.sni, RootCAs: p.roots, InsecureSkipVerify: tt.sni == "unknown.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cs := conn.ConnectionState()
			if got := cs.PeerCertificates[0].DNSNames[0]; got != tt.want {
				t.Errorf("certificate for %q, want %q", got, tt.want)
			}
			if tt.sni == "a.example.com" && len(cs.PeerCertificates) != 2 {
				t.Errorf("chain of %d certificates, want leaf and intermediate", len(cs.PeerCertificates))
			}
		})
	}
}

func TestTLSMinVersion(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, p := tlsFrontend(t, b, "1.3")
	_, err := tls.Dial("tcp", f.Addr().String(), &tls.Config{ServerName: "a.example.com", RootCAs: p.roots, MaxVersion: tls.VersionTLS12})
	if err == nil {
		t.Fatal("TLS 1.2 handshake succeeded with tls_min_version 1.3")
	}
	conn, err := tls.Dial("tcp", f.Addr().String(), &tls.Config{ServerName: "a.example.com", RootCAs: p.roots})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

// TestHTTPSAndHTTP2 sends requests over TLS with HTTP/1.1 and with
// HTTP/2 negotiated by ALPN.
func TestHTTPSAndHTTP2(t *testing.T) {
	b := hashBackend(t, nil)
	f, p := tlsFrontend(t, b, "1.2")
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{ServerName: "a.example.com", RootCAs: p.roots},
				ForceAttemptHTTP2: proto == "HTTP/2.0",
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "tcp", f.Addr().String())
				},
			}
			if proto == "HTTP/1.1" {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			// A small body (sent with the head), a large one (streamed)
			// and one of unknown length (chunked to the backend).
			for _, body := range []io.Reader{strings.NewReader("hello"), strings.NewReader(strings.Repeat("x", 1<<20)), io.MultiReader(strings.NewReader("abc"))} {
				resp, got := post(t, c, "https://a.example.com/up", body)
				if resp.Proto != proto || resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") == "" {
					t.Fatalf("%s %d %q %v", resp.Proto, resp.StatusCode, got, resp.Header)
				}
			}
			r := b.last(t)
			if r.Header.Get("X-Forwarded-Proto") != "https" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
				r.Host != "a.example.com" {
				t.Errorf("backend saw Host %q, %v", r.Host, r.Header)
			}
			if resp, got := get(t, c, "https://a.example.com/nowhere"); !isErrorPage(resp, got, 503) {
				t.Errorf("no backend: %d %q", resp.StatusCode, got)
			}
		})
	}
}

// TestH2C speaks HTTP/2 with prior knowledge to a plain frontend.
func TestH2C(t *testing.T) {
	b := hashBackend(t, nil)
	f, _ := simple(t, "", b)
	c := h2cClient(f)
	defer c.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, got := post(t, c, "http://h2c.test/", strings.NewReader("hello"))
		if resp.Proto != "HTTP/2.0" || !strings.HasPrefix(got, "5 ") {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, got)
		}
	}
	if r := b.last(t); r.Header.Get("X-Forwarded-Proto") != "http" || r.Host != "h2c.test" {
		t.Errorf("backend saw Host %q, %v", r.Host, r.Header)
	}
	if n := f.Stats().Total; n != 1 {
		t.Errorf("%d connections, want one HTTP/2 connection", n)
	}
}

// TestTLSReload: Update loads new certificates for new handshakes; a
// reload whose certificates do not load keeps the old ones.
func TestTLSReload(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, p, pools := tlsFrontendPools(t, b, "1.2")
	served := func() string { return servedName(t, f, "c.example.com") }
	if got := served(); got != "a.example.com" {
		t.Fatalf("before reload: %s", got)
	}
	certC, keyC := p.leaf(t, 4, "c.example.com")
	dir := t.TempDir()
	cfg := f.Config()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(cfg.TLSCert, certC, 0o600)
	os.WriteFile(cfg.TLSKey, keyC, 0o600)
	f.Update(cfg, pools)
	if got := served(); got != "c.example.com" {
		t.Errorf("after reload: %s", got)
	}
	cfg.TLSCert = filepath.Join(dir, "missing.pem")
	f.Update(cfg, pools)
	if got := served(); got != "c.example.com" {
		t.Errorf("after a failed reload: %s", got)
	}
}

// TestTLSCertFilesWatched: certificate files replaced on disk (as a
// renewal does: write beside, rename over) are served within a few
// seconds without a reload, a connection open across the change keeps
// working, and files that do not load leave the current certificate.
func TestTLSCertFilesWatched(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, p, _ := tlsFrontendPools(t, b, "1.2") // started: its watcher runs
	served := func() string { return servedName(t, f, "d.example.com") }
	if got := served(); got != "a.example.com" {
		t.Fatalf("at start: %s", got)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "a.example.com", RootCAs: p.roots}}}
	defer hc.CloseIdleConnections()
	url := "https://" + f.Addr().String() + "/"
	if resp, _ := get(t, hc, url); resp.StatusCode != 200 {
		t.Fatalf("before the change: %s", resp.Status)
	}
	cfg := f.Config()
	replace := func(path string, data []byte) {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	certD, keyD := p.leaf(t, 5, "d.example.com")
	replace(cfg.TLSKey, keyD)
	replace(cfg.TLSCert, certD)
	waitFor(t, "the renewed certificate", func() bool { return served() == "d.example.com" })
	// The keep-alive connection opened before the change still serves.
	if resp, _ := get(t, hc, url); resp.StatusCode != 200 {
		t.Errorf("on the connection opened before the change: %s", resp.Status)
	}
	// A key that does not match: the current certificate stays.
	_, keyE := p.leaf(t, 6, "e.example.com")
	replace(cfg.TLSKey, keyE)
	waitFor(t, "the failed load", func() bool {
		f.certMu.Lock()
		defer f.certMu.Unlock()
		return f.certFiles.failedK != (fileStamp{})
	})
	if got := served(); got != "d.example.com" {
		t.Errorf("after files that do not load: %s, want d.example.com kept", got)
	}
}
