package httpproxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// certStore holds a frontend's certificates and picks one by SNI (RFC
// 6066 §3): an exact name first, then a wildcard one label up, then the
// first certificate.
//
// tls_cert may hold several chains, one after the other, each a leaf
// followed by its intermediates; tls_key holds their private keys, in any
// order. A single pair, the usual case, is just one chain.
type certStore struct {
	certs []*tls.Certificate
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // "example.com" for "*.example.com"
}

// loadCertStore reads certFile and keyFile.
func loadCertStore(certFile, keyFile string) (*certStore, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: tls_cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: tls_key: %w", err)
	}
	return parseCertStore(certPEM, keyPEM)
}

// parseCertStore splits certPEM into chains and pairs each with its key.
func parseCertStore(certPEM, keyPEM []byte) (*certStore, error) {
	var chains [][]*pem.Block
	var prev *x509.Certificate
	for rest := certPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("httpproxy: tls_cert: %w", err)
		}
		// A certificate continues the chain when it issued the previous one.
		issuer := prev != nil && !bytes.Equal(prev.RawIssuer, prev.RawSubject) &&
			bytes.Equal(prev.RawIssuer, c.RawSubject)
		if issuer {
			chains[len(chains)-1] = append(chains[len(chains)-1], blk)
		} else {
			chains = append(chains, []*pem.Block{blk})
		}
		prev = c
	}
	if len(chains) == 0 {
		return nil, errors.New("httpproxy: tls_cert: no certificate found")
	}
	var keys [][]byte
	for rest := keyPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			keys = append(keys, pem.EncodeToMemory(blk))
		}
	}
	s := &certStore{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for i, chain := range chains {
		var buf bytes.Buffer
		for _, blk := range chain {
			pem.Encode(&buf, blk)
		}
		var cert *tls.Certificate
		for _, k := range keys {
			if c, err := tls.X509KeyPair(buf.Bytes(), k); err == nil {
				cert = &c
				break
			}
		}
		if cert == nil {
			return nil, fmt.Errorf("httpproxy: tls_key: no private key matches certificate %d of tls_cert", i+1)
		}
		s.add(cert)
	}
	return s, nil
}

func (s *certStore) add(c *tls.Certificate) {
	s.certs = append(s.certs, c)
	leaf := c.Leaf
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		m := s.exact
		if strings.HasPrefix(n, "*.") {
			n, m = n[2:], s.wild
		}
		if _, dup := m[n]; !dup { // the first chain naming it wins
			m[n] = c
		}
	}
}

// get is tls.Config.GetCertificate.
func (s *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := s.exact[name]; c != nil {
			return c, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if c := s.wild[parent]; c != nil {
				return c, nil
			}
		}
	}
	return s.certs[0], nil
}

// tlsVersion maps tls_min_version to crypto/tls; TLS 1.2 is the floor.
func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}
