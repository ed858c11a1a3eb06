package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
)

// httpBackend answers HTTP/1.1 (RFC 9112) GET /N with a prebuilt 200
// response whose body is N bytes, for each N it was built with, keeping
// the connection alive. It is a few dozen lines on bufio, not net/http,
// so that it costs a fraction of what the proxy under test costs.
type httpBackend struct {
	keep, close map[string][]byte // path → whole response
}

func newHTTPBackend(sizes []int) *httpBackend {
	b := &httpBackend{keep: map[string][]byte{}, close: map[string][]byte{}}
	for _, n := range sizes {
		body := bytes.Repeat([]byte("x"), n)
		if n == 13 {
			body = []byte("Hello, World!")
		}
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", n)
		path := "/" + strconv.Itoa(n)
		b.keep[path] = append([]byte(head+"\r\n"), body...)
		b.close[path] = append([]byte(head+"Connection: close\r\n\r\n"), body...)
	}
	return b
}

var (
	resp404 = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	resp400 = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// path returns the path to answer ("/" is the smallest response).
func (b *httpBackend) response(path string, closing bool) []byte {
	if path == "/" {
		path = "/13"
	}
	m := b.keep
	if closing {
		m = b.close
	}
	return m[path]
}

func (b *httpBackend) handle(c net.Conn) {
	br := bufio.NewReaderSize(c, 16<<10)
	bw := bufio.NewWriterSize(c, 16<<10)
	for {
		path, closing, err := readRequest(br)
		if err != nil {
			if err != errEOF {
				bw.Write(resp400)
				bw.Flush()
			}
			return
		}
		resp := b.response(path, closing)
		if resp == nil {
			bw.Write(resp404)
			bw.Flush()
			return
		}
		bw.Write(resp) // a large response with an empty buffer goes straight out
		if closing {
			bw.Flush()
			return
		}
		if br.Buffered() == 0 { // answer pipelined requests in one write
			if bw.Flush() != nil {
				return
			}
		}
	}
}

type httpError string

func (e httpError) Error() string { return "bench: http backend: " + string(e) }

const errEOF = httpError("connection closed")

// readRequest reads one request head and discards a Content-Length body.
// It returns the path (without query) and whether the connection closes
// after the response (HTTP/1.0 or "Connection: close").
func readRequest(br *bufio.Reader) (path string, closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 {
			return "", false, errEOF
		}
		return "", false, httpError("request line: " + err.Error())
	}
	f := bytes.Fields(line)
	if len(f) != 3 || !bytes.HasPrefix(f[2], []byte("HTTP/1.")) {
		return "", false, httpError("bad request line")
	}
	target, _, _ := bytes.Cut(f[1], []byte("?"))
	path = string(target)
	closing = string(f[2]) == "HTTP/1.0"
	var length int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", false, httpError("header: " + err.Error())
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return "", false, httpError("header without colon")
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return "", false, httpError("bad Content-Length")
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return "", false, httpError("request bodies in chunks are not supported")
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				closing = true
			}
		}
	}
	if length > 0 {
		if _, err := br.Discard(int(length)); err != nil {
			return "", false, httpError("body: " + err.Error())
		}
	}
	return path, closing, nil
}
