package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrNotRunning reports that nothing answers on the admin socket.
var ErrNotRunning = errors.New("is lbd running?")

// DefaultSocket is where lbd listens unless node.admin_socket says otherwise.
const DefaultSocket = "/run/lbd/lbd.sock"

// Call sends one command to the lbd serving the socket at path and returns
// its response. A failure to reach lbd wraps ErrNotRunning; a response with
// OK false is returned as is, with a nil error.
func Call(ctx context.Context, path, cmd string, args ...string) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach lbd at %s: %w", path, ErrNotRunning)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(time.Minute))
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	req, err := json.Marshal(Request{V: Version, Cmd: cmd, Args: args})
	if err != nil {
		return nil, fmt.Errorf("admin: encoding request: %w", err)
	}
	if _, err := c.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("admin: sending to %s: %w", path, err)
	}
	line, err := readLine(bufio.NewReader(c))
	if err != nil {
		return nil, fmt.Errorf("admin: reading answer from %s: %w", path, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("admin: malformed answer from %s: %w", path, err)
	}
	return &resp, nil
}
