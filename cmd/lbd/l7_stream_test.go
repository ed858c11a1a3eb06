package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"lbd/lab"
)

// wsActive returns how many connections lbctl status counts on the ws
// frontend and on the backends of pool ws.
func (x *l7Lab) wsActive() (frontend, backends int64, err error) {
	st, err := x.status()
	for _, f := range st.Frontends {
		if f.Name == "ws" {
			frontend = f.Active
		}
	}
	for _, p := range st.Pools {
		for _, b := range p.Backends {
			if p.Name == "ws" {
				backends += b.Active
			}
		}
	}
	return frontend, backends, err
}

// websocket: a WebSocket echo through a frontend with a 5 s idle_timeout
// stays up for 60 s while a message crosses it every 3 s; lbctl status
// counts it on the frontend and on a backend while it is open, and no
// longer once it is closed.
func (x *l7Lab) websocket(t *testing.T) {
	const (
		lifetime = 60 * time.Second
		every    = 3 * time.Second // less than the idle_timeout
	)
	counted := func(want int64) func() (bool, string) {
		return func() (bool, string) {
			f, b, err := x.wsActive()
			return err == nil && f == want && b == want, fmt.Sprintf("active on frontend ws %d, on pool ws %d, want %d (%v)", f, b, want, err)
		}
	}
	nc, err := x.client.Dial("tcp", "198.18.0.11:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg, err := websocket.NewConfig("ws://198.18.0.11:8000/ws", "http://198.18.0.50/")
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	ws, err := websocket.NewClient(cfg, nc)
	if err != nil {
		t.Fatalf("WebSocket handshake through lbd: %v", err)
	}
	start := time.Now()
	var last time.Time // of the last echo
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		msg := fmt.Sprintf("lab message %d", i)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		var got string
		err := websocket.Message.Send(ws, msg)
		if err == nil {
			err = websocket.Message.Receive(ws, &got)
		}
		if err != nil || got != msg {
			t.Fatalf("%v after the upgrade, message %d: echo %q, %v; want %q (the last echo was %v before, idle_timeout is 5s)",
				time.Since(start).Round(time.Millisecond), i, got, err, msg, time.Since(last).Round(time.Millisecond))
		}
		last = time.Now()
		if i == 0 {
			lab.Eventually(t, 10*time.Second, counted(1))
		}
		if time.Since(start) >= lifetime {
			t.Logf("WebSocket echo alive after %v, %d messages, through a 5s idle_timeout", time.Since(start).Round(time.Millisecond), i+1)
			break
		}
		<-tick.C
	}
	lab.Eventually(t, 10*time.Second, counted(1))
	ws.Close()
	lab.Eventually(t, 10*time.Second, counted(0))
}

// grpc: grpc-go's client through lbd's h2c frontend to the interop
// TestService, reached over HTTP/2 too (pool protocol = "h2c"): unary,
// server streaming and a bidi stream of 100 interleaved messages, all
// ending with status OK.
func (x *l7Lab) grpc(t *testing.T) {
	cc, err := grpc.NewClient("passthrough:///198.18.0.11:50051",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(_ context.Context, addr string) (net.Conn, error) {
			return x.client.Dial("tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	servers := map[string]int{}
	for i := range 4 {
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 1000, Payload: &testpb.Payload{Body: make([]byte, 100)}})
		if err != nil {
			t.Fatalf("UnaryCall %d: status %v: %v", i, status.Code(err), err)
		}
		if n := len(resp.GetPayload().GetBody()); n != 1000 {
			t.Errorf("UnaryCall %d: payload of %d bytes, want 1000", i, n)
		}
		servers[resp.GetServerId()]++
	}
	t.Logf("4 unary calls answered by %v", servers)

	sizes := []int{1, 10, 100, 1000, 10000, 100000}
	req := &testpb.StreamingOutputCallRequest{}
	for _, n := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: int32(n)})
	}
	out, err := c.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatalf("StreamingOutputCall: status %v: %v", status.Code(err), err)
	}
	var got []int
	for {
		r, err := out.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("StreamingOutputCall after %d messages: status %v: %v", len(got), status.Code(err), err)
		}
		got = append(got, len(r.GetPayload().GetBody()))
	}
	if diff := cmp.Diff(sizes, got); diff != "" {
		t.Errorf("server stream payload sizes (-want +got):\n%s", diff)
	}

	bidi, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatalf("FullDuplexCall: status %v: %v", status.Code(err), err)
	}
	for i := range 100 {
		msg := fmt.Sprintf("bidi message %03d", i)
		if err := bidi.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatalf("bidi send %d: %v", i, err)
		}
		r, err := bidi.Recv()
		if err != nil {
			t.Fatalf("bidi receive %d: status %v: %v", i, status.Code(err), err)
		}
		if string(r.GetPayload().GetBody()) != msg {
			t.Fatalf("bidi receive %d: %q, want %q", i, r.GetPayload().GetBody(), msg)
		}
	}
	if err := bidi.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bidi.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("bidi stream end: status %v: %v; want OK (io.EOF)", status.Code(err), err)
	}
}
