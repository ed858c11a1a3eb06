// Package httpproxy is lbd's L7 proxy: mode = "http" frontends.
//
// Clients speak HTTP/1.1 (RFC 9112) in plain text or over TLS, or HTTP/2
// (RFC 9113) negotiated by ALPN or with prior knowledge (h2c). Requests are
// routed to a pool by host, path prefix or header and forwarded to a backend
// over pooled keep-alive HTTP/1.1 connections, or, for a pool with
// protocol = "h2c" (gRPC), as streams over multiplexed HTTP/2 cleartext
// connections (h2c.go), bodies and trailers streamed both ways.
//
// With proxy_protocol, backend connections start with a PROXY header and
// belong to the client connection it names (proxyproto.go). With
// access_log, each request leaves one JSON line, queued in a ring and
// written by one goroutine per frontend (accesslog.go).
//
// The HTTP/1.1 path does not use net/http: a small strict parser reads the
// request head straight from a pooled buffer, the head is forwarded with
// minimal rewriting (hop-by-hop fields of RFC 9110 §7.6.1 dropped,
// X-Forwarded-* and a request id added) and bodies are streamed, never
// buffered whole. Messages whose framing two parsers could read differently
// (RFC 9112 §6.3, §11.2: request smuggling) are refused with 400 before any
// byte reaches a backend. HTTP/2 goes through golang.org/x/net/http2 and a
// handler that forwards to the same backend connection pool.
package httpproxy
