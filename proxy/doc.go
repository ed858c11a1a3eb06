// Package proxy is lbd's data plane: frontends that accept clients on the
// VIPs (TCP, UDP and HTTP), pools that pick a backend with proxy/balance, and
// the copy loops between them.
//
// Listeners bind the frontend address with IP_FREEBIND on every node,
// whether or not the node holds the VIP yet, so the node that becomes master
// serves the first packet that reaches it without rebinding.
package proxy
