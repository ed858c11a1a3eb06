package health

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// tcpProber is the "tcp" check (a TCP connect, closed at once) and the
// "tls" check (a connect and a TLS handshake).
type tcpProber struct {
	timeout    time.Duration
	tls        bool
	serverName string // SNI for tls; empty: the host of the address when it is a name
}

func (p *tcpProber) Probe(ctx context.Context, addr string) Result {
	if !p.tls {
		if r, ok := connectProbe(ctx, addr, p.timeout); ok {
			return r
		}
	}
	d := net.Dialer{KeepAlive: -1} // no keepalive options for a connection that lives microseconds
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Result{Text: describe(ctx, err, p.timeout)}
	}
	defer c.Close()
	if !p.tls {
		return Result{OK: true, Text: "connected"}
	}
	// The certificate is not verified, as HAProxy's "check-ssl verify
	// none": the check asks whether the backend speaks TLS, not whom it
	// claims to be.
	tc := tls.Client(c, &tls.Config{
		ServerName:         p.sni(addr),
		InsecureSkipVerify: true,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return Result{Text: "TLS handshake: " + describe(ctx, err, p.timeout)}
	}
	return Result{OK: true, Text: tls.VersionName(tc.ConnectionState().Version)}
}

func (p *tcpProber) sni(addr string) string {
	if p.serverName != "" {
		return p.serverName
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return ""
	}
	return host
}
