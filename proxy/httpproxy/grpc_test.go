package httpproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"lbd/config"
	"lbd/proxy"
	"lbd/proxy/balance"
)

// grpcService is grpc-go's test service (grpc.testing.TestService) as
// the backend of the gRPC tests: it names itself in every answer and
// echoes what the proxy added to the request.
type grpcService struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func (s *grpcService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if st := in.GetResponseStatus(); st != nil && st.Code != 0 {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	grpc.SetTrailer(ctx, metadata.Pairs("x-served-by", s.name))
	return &testpb.SimpleResponse{
		Payload:  &testpb.Payload{Body: bytes.Repeat([]byte("u"), int(in.ResponseSize))},
		ServerId: s.name,
		Hostname: strings.Join(md.Get("x-forwarded-for"), ","),
		Username: strings.Join(md.Get("x-request-id"), ","),
	}, nil
}

func (s *grpcService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.ResponseParameters {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: bytes.Repeat([]byte("s"), int(p.Size))}}); err != nil {
			return err
		}
	}
	return nil
}

// FullDuplexCall answers each message at once with its payload and the
// sizes it asks for: the client sees an answer before it sends the next.
func (s *grpcService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		body := append([]byte(nil), in.GetPayload().GetBody()...)
		for _, p := range in.ResponseParameters {
			body = append(body, bytes.Repeat([]byte("d"), int(p.Size))...)
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
}

// startGRPC starts a gRPC server (h2c, as grpc-go serves without TLS) on
// loopback and returns a placeholder backend carrying its address.
func startGRPC(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, &grpcService{name: name})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return &backend{name: name, addr: ln.Addr().String()}
}

func grpcClient(t testing.TB, f *Frontend) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+f.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

const h2cConfig = `
[[frontend]]
name = "grpc"
bind = "127.0.0.1:1"
mode = "http"
default_pool = "g"
idle_timeout = "10s"

[[pool]]
name = "g"
protocol = "h2c"
read_timeout = "5s"
connect_timeout = "1s"
`

// TestGRPCThroughProxy runs gRPC's three kinds of call from a gRPC client
// (HTTP/2 with prior knowledge to the frontend) through the proxy to
// grpc-go servers over h2c.
func TestGRPCThroughProxy(t *testing.T) {
	g1, g2 := startGRPC(t, "g1"), startGRPC(t, "g2")
	f, _ := setup(t, h2cConfig+backendsTOML(2), g1, g2)
	c := grpcClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("unary", func(t *testing.T) {
		var served []string
		for i := 0; i < 4; i++ {
			var trailer metadata.MD
			resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 100}, grpc.Trailer(&trailer))
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if len(resp.GetPayload().GetBody()) != 100 {
				t.Errorf("call %d: payload of %d bytes, want 100", i, len(resp.GetPayload().GetBody()))
			}
			if resp.Hostname != "127.0.0.1" {
				t.Errorf("call %d: backend saw X-Forwarded-For %q, want 127.0.0.1", i, resp.Hostname)
			}
			if len(resp.Username) != 32 {
				t.Errorf("call %d: backend saw request id %q", i, resp.Username)
			}
			if got := trailer.Get("x-served-by"); len(got) != 1 || got[0] != resp.ServerId {
				t.Errorf("call %d: trailer x-served-by %q, served by %s", i, got, resp.ServerId)
			}
			served = append(served, resp.ServerId)
		}
		// Every call is balanced on its own, though they share one
		// client connection.
		if diff := cmp.Diff([]string{"g1", "g2", "g1", "g2"}, served); diff != "" {
			t.Errorf("backends of four calls, round robin (-want +got):\n%s", diff)
		}
	})

	t.Run("status", func(t *testing.T) {
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
		if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
			t.Errorf("error %v, want NotFound \"no such thing\" (grpc-status travels in trailers)", err)
		}
	})

	t.Run("server-stream", func(t *testing.T) {
		sizes := []int32{1, 10, 1000, 70000, 5}
		req := &testpb.StreamingOutputCallRequest{}
		for _, s := range sizes {
			req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: s})
		}
		stream, err := c.StreamingOutputCall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var got []int32
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d messages: %v", len(got), err)
			}
			got = append(got, int32(len(m.GetPayload().GetBody())))
		}
		if diff := cmp.Diff(sizes, got); diff != "" {
			t.Errorf("message sizes (-want +got):\n%s", diff)
		}
	})

	t.Run("bidi", func(t *testing.T) {
		stream, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each answer is read before the next message is sent: the
		// request stream stays open while answers flow back.
		for i := 0; i < 100; i++ {
			msg := []byte(strings.Repeat("m", i))
			if err := stream.Send(&testpb.StreamingOutputCallRequest{
				Payload:            &testpb.Payload{Body: msg},
				ResponseParameters: []*testpb.ResponseParameters{{Size: int32(i % 7)}},
			}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			want := string(msg) + strings.Repeat("d", i%7)
			if got := string(m.GetPayload().GetBody()); got != want {
				t.Fatalf("answer %d: %q, want %q", i, got, want)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("after CloseSend: %v, want io.EOF", err)
		}
	})
}

// TestGRPCNoBackend: a gRPC client gets the proxy's errors as HTTP
// statuses, which grpc-go maps to codes (503 → Unavailable).
func TestGRPCNoBackend(t *testing.T) {
	dead := &backend{addr: deadAddr(t)}
	f, _ := setup(t, h2cConfig+"retries = 0\n"+backendsTOML(1), dead)
	c := grpcClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Errorf("error %v, want Unavailable (HTTP 502)", err)
	}
}

// h2cBackend is a plain net/http server speaking only HTTP/2 with prior
// knowledge, as an h2c backend that is not gRPC.
func startH2CBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return &backend{addr: ln.Addr().String()}
}

// TestH2CFromHTTP1: an HTTP/1.1 client's requests go to an h2c pool over
// HTTP/2, bodies both ways, with the response's trailers at the end of a
// chunked body.
func TestH2CFromHTTP1(t *testing.T) {
	type seen struct {
		Proto, Method, Path, XFF, XFH, TE, Conn, Body string
	}
	got := make(chan seen, 10)
	b := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Proto, r.Method, r.RequestURI, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("Te"), r.Header.Get("Connection"), string(body)}
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("X-Kind", "h2c")
		io.WriteString(w, "echo:"+string(body))
		w.Header().Set("X-Checksum", "42")
	})
	f, _ := setup(t, h2cConfig+backendsTOML(1), b)

	cases := []struct {
		name, req string
		want      seen
	}{
		{"get", "GET /a/b?c=1 HTTP/1.1\r\nHost: app.test\r\nTE: trailers\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n",
			seen{"HTTP/2.0", "GET", "/a/b?c=1", "127.0.0.1", "app.test", "trailers", "", ""}},
		{"length", "POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nX-Forwarded-For: 198.18.0.7\r\n\r\nhello",
			seen{"HTTP/2.0", "POST", "/up", "198.18.0.7, 127.0.0.1", "app.test", "", "", "hello"}},
		{"chunked", "POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
			seen{"HTTP/2.0", "POST", "/up", "127.0.0.1", "app.test", "", "", "abcde"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := raw(t, f, tc.req)
			if resp.StatusCode != 200 || body != "echo:"+tc.want.Body {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Kind") != "h2c" || resp.Header.Get("X-Request-ID") == "" {
				t.Errorf("response fields %v", resp.Header)
			}
			if resp.Trailer.Get("X-Checksum") != "42" {
				t.Errorf("trailer %v, want X-Checksum: 42", resp.Trailer)
			}
			if diff := cmp.Diff(tc.want, <-got); diff != "" {
				t.Errorf("backend saw (-want +got):\n%s", diff)
			}
		})
	}

	// Keep-alive: several requests on one client connection.
	c := client(f)
	for i := 0; i < 3; i++ {
		resp, body := get(t, c, "http://app.test/k")
		if resp.StatusCode != 200 || body != "echo:" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		<-got
	}
}

// TestH2CStreamsResponse: the body of an h2c response reaches an
// HTTP/1.1 client piece by piece, as the backend flushes it.
func TestH2CStreamsResponse(t *testing.T) {
	next := make(chan struct{})
	b := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 3; i++ {
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	f, _ := setup(t, h2cConfig+backendsTOML(1), b)
	resp, err := client(f).Get("http://app.test/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	for i := 0; i < 3; i++ {
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "tick\n" {
			t.Fatalf("piece %d: %q %v", i, buf, err)
		}
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Errorf("after the pieces: %q %v", rest, err)
	}
}

// TestH2CReadTimeout: a backend that does not answer within read_timeout
// gets the client a 504, and a backend that refuses connections a retry
// on another.
func TestH2CFailures(t *testing.T) {
	release := make(chan struct{})
	slow := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	f, _ := setup(t, strings.Replace(h2cConfig, `read_timeout = "5s"`, `read_timeout = "200ms"`, 1)+backendsTOML(1), slow)
	resp, _ := raw(t, f, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if resp.StatusCode != 504 {
		t.Errorf("slow backend: %d, want 504", resp.StatusCode)
	}

	dead := &backend{addr: deadAddr(t)}
	ok := startH2CBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f2, _ := setup(t, h2cConfig+backendsTOML(2), dead, ok)
	for i := 0; i < 4; i++ {
		// POST is not idempotent, but a connection that failed carried
		// nothing: it is retried.
		resp, body := raw(t, f2, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nhi")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

// TestH2CConnectionsShared: requests to an h2c pool share few backend
// connections (streams), and the connections close when the frontend
// does.
func TestH2CConnectionsShared(t *testing.T) {
	var accepts countingListener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepts.Listener = ln
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(&accepts) }()
	defer func() { srv.Close(); <-served }()
	f, _ := setup(t, h2cConfig+backendsTOML(1), &backend{addr: ln.Addr().String()})
	for i := 0; i < 3; i++ {
		c := client(f)
		for j := 0; j < 5; j++ {
			if resp, body := get(t, c, "http://app.test/"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		}
		c.CloseIdleConnections()
	}
	if n := accepts.accepts.Load(); n != 1 {
		t.Errorf("15 requests from 3 clients opened %d backend connections, want 1", n)
	}
	p0 := f.st.Load().targets["g"].pool.Backends()[0]
	h := f.st.Load().targets["g"].h2c[p0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the h2c connection to close", func() bool { return h.conns.Load() == 0 })
}

// TestH2CDrainAndReload: an h2c backend being drained loses its idle
// connection, and so does one a reload removes; the backend that stays
// keeps its connection across the reload.
func TestH2CDrainAndReload(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
	b1, b2, b3 := startH2CBackend(t, ok), startH2CBackend(t, ok), startH2CBackend(t, ok)
	toml := h2cConfig + backendsTOML(3)
	f, pools := setup(t, toml, b1, b2, b3)
	c := client(f)
	for i := 0; i < 3; i++ { // round robin: one request each
		if resp, body := get(t, c, "http://app.test/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	tgt := f.st.Load().targets["g"]
	bs := tgt.pool.Backends()
	conns := func(i int) int64 { return tgt.h2c[bs[i]].conns.Load() }
	for i := range bs {
		if conns(i) != 1 {
			t.Fatalf("backend %d has %d h2c connections, want 1", i, conns(i))
		}
	}
	if err := pools["g"].SetState(bs[0].Address(), balance.StateDraining); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the draining backend's idle connection to close", func() bool { return conns(0) == 0 })

	// Reload without the third backend.
	cfg, err := config.Parse("test.toml", []byte(strings.NewReplacer("{b0}", b1.addr, "{b1}", b2.addr, "{b2}", b3.addr).Replace(
		strings.Replace(toml, "  [[pool.backend]]\n  address = \"{b2}\"\n", "", 1))))
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.NewPool(cfg.Pools[0], pools["g"], discard)
	if err != nil {
		t.Fatal(err)
	}
	fc := cfg.Frontends[0]
	fc.Bind = f.Config().Bind
	f.Update(fc, proxy.Pools{"g": p})
	waitFor(t, "the removed backend's connection to close", func() bool { return conns(2) == 0 })
	if conns(1) != 1 {
		t.Errorf("the backend that stays has %d connections, want its 1", conns(1))
	}
	if tgt2 := f.st.Load().targets["g"]; tgt2.h2c[bs[1]] != tgt.h2c[bs[1]] {
		t.Error("the backend that stays got a new transport")
	}
}
