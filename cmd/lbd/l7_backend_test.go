package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"lbd/lab"
)

// l7BackendArg, as the first argument, makes the test binary an L7
// backend instead of running tests: startL7Backend runs it so inside a
// namespace host, where a test can SIGKILL it like a real server.
const l7BackendArg = "-lbd-l7-backend"

func init() {
	if len(os.Args) > 1 && os.Args[1] == l7BackendArg {
		if err := l7BackendMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "l7 backend:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// startL7Backend runs the test binary as a backend in h: HTTP on httpAddr
// (see l7HTTPHandler) and, when grpcAddr is not empty, the gRPC interop
// TestService on grpcAddr. It returns once both listen.
func startL7Backend(t *testing.T, h *lab.Host, httpAddr, grpcAddr string) *lab.Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(exe, l7BackendArg, "-name", h.Name, "-http", httpAddr, "-grpc", grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput("l7 backend ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// l7BackendMain serves until SIGTERM (or SIGKILL) in the namespace the
// process was started in.
func l7BackendMain(args []string) error {
	fs := flag.NewFlagSet("l7 backend", flag.ContinueOnError)
	name := fs.String("name", "backend", "name in every answer")
	httpAddr := fs.String("http", "", "HTTP listen address")
	grpcAddr := fs.String("grpc", "", "gRPC (h2c) listen address; empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	hln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: l7HTTPHandler(*name), ReadHeaderTimeout: 10 * time.Second}
	var gs *grpc.Server
	var gln net.Listener
	if *grpcAddr != "" {
		if gln, err = net.Listen("tcp", *grpcAddr); err != nil {
			return err
		}
		gs = grpc.NewServer()
		testpb.RegisterTestServiceServer(gs, &l7TestService{name: *name})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- hs.Serve(hln) })
	if gs != nil {
		wg.Go(func() { errs <- gs.Serve(gln) })
	}
	fmt.Println("l7 backend ready")
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	hs.Close()
	if gs != nil {
		gs.Stop()
	}
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// l7Seen is what the backend reports about a request to /headers.
type l7Seen struct {
	Backend        string `json:"backend"`
	Proto          string `json:"proto"`
	Host           string `json:"host"`
	ForwardedFor   string `json:"x_forwarded_for"`
	ForwardedProto string `json:"x_forwarded_proto"`
	RequestID      string `json:"x_request_id"`
}

// l7HTTPHandler answers /health with 200, /ws with a WebSocket echo
// (RFC 6455), /headers with the request as l7Seen in JSON and anything
// else with the backend's name and a newline.
func l7HTTPHandler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }))
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(l7Seen{
			Backend: name, Proto: r.Proto, Host: r.Host,
			ForwardedFor:   r.Header.Get("X-Forwarded-For"),
			ForwardedProto: r.Header.Get("X-Forwarded-Proto"),
			RequestID:      r.Header.Get("X-Request-ID"),
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+"\n") })
	return mux
}

// l7TestService is the grpc-go interop TestService (grpc/testing/test.proto)
// for the calls the lab makes: payloads of the asked sizes, and in a full
// duplex call each request's payload echoed back, so the client can check
// the order.
type l7TestService struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func (s *l7TestService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, req.GetResponseSize())}, ServerId: s.name}, nil
}

func (s *l7TestService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *l7TestService) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}
