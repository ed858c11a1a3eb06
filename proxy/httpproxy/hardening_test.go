package httpproxy

import "testing"

// TestHardening sends every refused head of badRequests through a running
// proxy as raw bytes: the client gets the status with a request id, and
// the backend sees nothing at all, not even a connection.
func TestHardening(t *testing.T) {
	b := startBackend(t, "b", nil)
	f, _ := simple(t, "", b)
	for _, tt := range badRequests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, f, tt.in)
			if !isErrorPage(resp, body, tt.status) {
				t.Errorf("got %d %q, want %d with the request id", resp.StatusCode, body, tt.status)
			}
			if !resp.Close {
				t.Error("the response does not close the connection")
			}
			if n, m := b.ln.accepts.Load(), b.ln.bytes.Load(); n != 0 || m != 0 {
				t.Fatalf("the backend got %d connections and %d bytes", n, m)
			}
		})
	}
}
