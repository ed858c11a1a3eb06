// Command lbctl controls a running lbd over its admin socket.
package main

import (
	"context"
	"os"

	"lbd/admin/ctl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(ctl.Run(context.Background(), version, os.Args[1:], os.Stdout, os.Stderr))
}
