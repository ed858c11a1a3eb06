package httpproxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Access log sizes. A request copies a fixed record into a ring of
// logRing entries; a line whose request finds the ring full is dropped
// and counted, so a slow disk never holds a request up.
const (
	logRing     = 2048
	logTextMax  = 1024 // method, host and path together; the path is cut to fit
	logMaxHost  = 255
	logMaxMeth  = 32
	logBatch    = 64 << 10             // bytes written at once
	logFlushDue = 5 * time.Millisecond // how long a line may wait for others to join its write
)

// Values of logFacts.route that are not an index.
const (
	routeNone    = -2 // no route matched and there is no default_pool (404)
	routeDefault = -1 // default_pool
)

// logFacts is the fixed part of an access log line.
type logFacts struct {
	start     int64 // unix nanoseconds: the request head was read
	dur       int64 // nanoseconds until the response was complete
	connect   int64 // nanoseconds from start to the backend connection being ready; <0: no backend
	firstByte int64 // nanoseconds from start to the response head from the backend; <0: none
	bytesIn   uint64
	bytesOut  uint64
	client    netip.AddrPort
	backend   string
	pool      string
	status    uint16
	route     int16
	proto     uint8 // 10, 11 or 20: HTTP/1.0, HTTP/1.1, HTTP/2.0
	trunc     bool  // the path was cut to fit
	tlsVer    uint16
	mLen      uint16
	hLen      uint16
	pLen      uint16
	idLen     uint8
	id        [maxRequestID]byte
}

// logEntry is one access log line before it is encoded: the facts and
// the request's method, host and path, copied so that the request's
// buffers can be reused at once.
type logEntry struct {
	logFacts
	text [logTextMax]byte
}

// reset prepares e for a new request.
func (e *logEntry) reset(start time.Time) {
	e.logFacts = logFacts{start: start.UnixNano(), connect: -1, firstByte: -1, route: routeNone}
}

// setText copies the method, host and path, cutting each to its share.
func (e *logEntry) setText(method, host, path []byte) {
	method = method[:min(len(method), logMaxMeth)]
	host = host[:min(len(host), logMaxHost)]
	n := copy(e.text[:], method)
	n += copy(e.text[n:], host)
	m := copy(e.text[n:], path)
	e.mLen, e.hLen, e.pLen = uint16(len(method)), uint16(len(host)), uint16(m)
	e.trunc = m < len(path)
}

// setTextString is setText for strings (HTTP/2 requests).
func (e *logEntry) setTextString(method, host, path string) {
	method = method[:min(len(method), logMaxMeth)]
	host = host[:min(len(host), logMaxHost)]
	n := copy(e.text[:], method)
	n += copy(e.text[n:], host)
	m := copy(e.text[n:], path)
	e.mLen, e.hLen, e.pLen = uint16(len(method)), uint16(len(host)), uint16(m)
	e.trunc = m < len(path)
}

func (e *logEntry) setID(id []byte) {
	e.idLen = uint8(copy(e.id[:], id))
}

// AccessLogStats are the counters of a frontend's access log.
type AccessLogStats struct {
	Lines   uint64 // lines written
	Dropped uint64 // lines dropped because the buffer was full
	Errors  uint64 // failed writes (their lines are lost)
}

// accessLog is a frontend's access_log: one JSON object per line and per
// request, written by one goroutine that the log owns. Requests only
// copy their entry into the ring.
type accessLog struct {
	frontend string
	log      *slog.Logger

	mu   sync.Mutex // guards r, n and the slots outside the writer's batch
	ring []logEntry
	r, n int // ring[r : r+n] (modulo) are pending

	wake  chan struct{} // the ring became non-empty
	full  chan struct{} // the ring is half full: write now
	stop  chan struct{}
	done  chan struct{}
	delay time.Duration

	fmu  sync.Mutex // guards out, file and path
	out  io.Writer
	file *os.File // nil for stdout
	path string

	lines, dropped, errs atomic.Uint64
}

// openAccessLog opens path ("stdout" or a file, appended to with mode
// 0640) and starts the log's writer.
func openAccessLog(frontend, path string, log *slog.Logger) (*accessLog, error) {
	l := &accessLog{
		frontend: frontend, log: log,
		ring: make([]logEntry, logRing),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		delay: logFlushDue,
	}
	if err := l.reopen(path); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// reopen (re)opens path and makes it the destination: on a reload, so
// that a log rotated by moving the file (logrotate, then SIGHUP) is
// written anew. The old file is closed once no write uses it.
func (l *accessLog) reopen(path string) error {
	var out io.Writer
	var f *os.File
	if path == "stdout" {
		out = os.Stdout
	} else {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("httpproxy: frontend %s: access_log: %w", l.frontend, err)
		}
		out = f
	}
	l.fmu.Lock()
	old := l.file
	l.out, l.file, l.path = out, f, path
	l.fmu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// add queues e. It never blocks: with the ring full, the line is dropped
// and counted.
func (l *accessLog) add(e *logEntry) {
	l.mu.Lock()
	if l.n == len(l.ring) {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	s := &l.ring[(l.r+l.n)%len(l.ring)]
	s.logFacts = e.logFacts
	copy(s.text[:], e.text[:int(e.mLen)+int(e.hLen)+int(e.pLen)])
	l.n++
	n := l.n
	l.mu.Unlock()
	switch n {
	case 1:
		select {
		case l.wake <- struct{}{}:
		default:
		}
	case len(l.ring) / 2:
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

// run is the writer: it waits for a line, lets others join it for a few
// milliseconds (or until the ring is half full), encodes and writes them
// in large writes, until close.
func (l *accessLog) run() {
	defer close(l.done)
	buf := make([]byte, 0, logBatch+4096)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-l.stop:
			l.drain(buf)
			return
		case <-l.wake:
		case <-l.full:
		}
		t.Reset(l.delay)
		select {
		case <-l.stop:
			l.drain(buf)
			return
		case <-t.C:
		case <-l.full:
			t.Stop()
		}
		buf = l.drain(buf)
	}
}

// drain writes every pending line.
func (l *accessLog) drain(buf []byte) []byte {
	for {
		l.mu.Lock()
		r, k := l.r, l.n
		l.mu.Unlock()
		if k == 0 {
			return buf
		}
		// Producers write only outside ring[r : r+k], until r moves.
		for i := range k {
			buf = appendLogLine(buf, &l.ring[(r+i)%len(l.ring)], l.frontend)
			if len(buf) >= logBatch {
				l.write(buf)
				buf = buf[:0]
			}
		}
		l.write(buf)
		buf = buf[:0]
		l.mu.Lock()
		l.r = (l.r + k) % len(l.ring)
		l.n -= k
		l.mu.Unlock()
	}
}

func (l *accessLog) write(p []byte) {
	if len(p) == 0 {
		return
	}
	lines := 0
	for _, c := range p {
		if c == '\n' {
			lines++
		}
	}
	l.fmu.Lock()
	_, err := l.out.Write(p)
	path := l.path
	l.fmu.Unlock()
	if err != nil {
		if l.errs.Add(1) == 1 || l.errs.Load()%1000 == 0 {
			l.log.Error("access log write failed", "path", path, "err", err, "failures", l.errs.Load())
		}
		return
	}
	l.lines.Add(uint64(lines))
}

// close writes what is pending, stops the writer and closes the file.
func (l *accessLog) close() {
	close(l.stop)
	<-l.done
	l.fmu.Lock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
	l.out = io.Discard
	l.fmu.Unlock()
}

func (l *accessLog) stats() AccessLogStats {
	return AccessLogStats{Lines: l.lines.Load(), Dropped: l.dropped.Load(), Errors: l.errs.Load()}
}

// appendLogLine appends e as one JSON object and a newline. Strings from
// the request are escaped as encoding/json does; invalid UTF-8 becomes
// U+FFFD.
func appendLogLine(dst []byte, e *logEntry, frontend string) []byte {
	dst = append(dst, `{"time":"`...)
	dst = time.Unix(0, e.start).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","client":"`...)
	if e.client.IsValid() {
		dst = e.client.AppendTo(dst)
	}
	text := e.text[:]
	m, h := int(e.mLen), int(e.mLen)+int(e.hLen)
	dst = append(dst, `","method":`...)
	dst = appendJSONString(dst, text[:m])
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, text[m:h])
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, text[h:h+int(e.pLen)])
	if e.trunc {
		dst = append(dst, `,"path_truncated":true`...)
	}
	dst = append(dst, `,"proto":"`...)
	switch e.proto {
	case 10:
		dst = append(dst, "HTTP/1.0"...)
	case 20:
		dst = append(dst, "HTTP/2.0"...)
	default:
		dst = append(dst, "HTTP/1.1"...)
	}
	dst = append(dst, `","status":`...)
	dst = strconv.AppendUint(dst, uint64(e.status), 10)
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendUint(dst, e.bytesIn, 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendUint(dst, e.bytesOut, 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendMillis(dst, e.dur)
	if e.connect >= 0 {
		dst = append(dst, `,"connect_ms":`...)
		dst = appendMillis(dst, e.connect)
	}
	if e.firstByte >= 0 {
		dst = append(dst, `,"first_byte_ms":`...)
		dst = appendMillis(dst, e.firstByte)
	}
	if e.backend != "" {
		dst = append(dst, `,"backend":`...)
		dst = appendJSONString(dst, e.backend)
	}
	if e.pool != "" {
		dst = append(dst, `,"pool":`...)
		dst = appendJSONString(dst, e.pool)
	}
	switch {
	case e.route == routeDefault:
		dst = append(dst, `,"route":"default"`...)
	case e.route >= 0:
		dst = append(dst, `,"route":"route[`...)
		dst = strconv.AppendInt(dst, int64(e.route), 10)
		dst = append(dst, `]"`...)
	}
	dst = append(dst, `,"request_id":`...)
	dst = appendJSONString(dst, e.id[:e.idLen])
	dst = append(dst, `,"tls":"`...)
	dst = append(dst, tlsVersionName(e.tlsVer)...)
	dst = append(dst, `","frontend":`...)
	dst = appendJSONString(dst, frontend)
	return append(dst, "}\n"...)
}

// appendMillis appends d nanoseconds as milliseconds with three decimals.
func appendMillis(dst []byte, d int64) []byte {
	dst = strconv.AppendInt(dst, d/1e6, 10)
	us := d % 1e6 / 1e3
	return append(dst, '.', byte('0'+us/100), byte('0'+us/10%10), byte('0'+us%10))
}

// tlsVersionName names a TLS version as "TLS1.3"; 0 is plain text, "".
func tlsVersionName(v uint16) string {
	switch v {
	case 0:
		return ""
	case 0x0301:
		return "TLS1.0"
	case 0x0302:
		return "TLS1.1"
	case 0x0303:
		return "TLS1.2"
	case 0x0304:
		return "TLS1.3"
	}
	return "unknown"
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259 §7): quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, and U+2028, U+2029 escaped as encoding/json does.
func appendJSONString[T []byte | string](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
