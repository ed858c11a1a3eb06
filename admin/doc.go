// Package admin is the control protocol between lbd and its clients (lbctl,
// tests, scripts): one JSON request and one JSON response per line over the
// unix socket named by node.admin_socket, versioned by Version.
//
// A request is
//
//	{"v":1,"cmd":"status","args":[]}
//
// and its response
//
//	{"v":1,"ok":true,"data":{...}}
//	{"v":1,"ok":false,"error":"reload refused","details":["lbd.toml:3: ..."]}
//
// The package holds no packet or netlink code, so lbctl stays small.
package admin
