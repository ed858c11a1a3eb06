package httpproxy

import "errors"

// httpError is a request the proxy refuses, with the status it answers.
// The values are package-level so that refusing allocates nothing.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return "httpproxy: " + e.msg }

func newHTTPError(status int, msg string) *httpError { return &httpError{status, msg} }

// Request-head errors (RFC 9112 §2–§7, RFC 9110 §15).
var (
	errBareLF         = newHTTPError(400, "line ends in a bare LF")
	errBareCR         = newHTTPError(400, "bare CR")
	errRequestLine    = newHTTPError(400, "malformed request line")
	errMethod         = newHTTPError(400, "malformed method")
	errTarget         = newHTTPError(400, "malformed request target")
	errVersion        = newHTTPError(400, "malformed HTTP version")
	errVersionSupport = newHTTPError(505, "HTTP version not supported")
	errObsFold        = newHTTPError(400, "obsolete line folding")
	errFieldName      = newHTTPError(400, "malformed header field name")
	errFieldValue     = newHTTPError(400, "invalid character in header field value")
	errHost           = newHTTPError(400, "missing, repeated or malformed Host")
	errContentLength  = newHTTPError(400, "invalid or conflicting Content-Length")
	errCLAndTE        = newHTTPError(400, "both Content-Length and Transfer-Encoding")
	errTENotChunked   = newHTTPError(400, "Transfer-Encoding does not end in chunked")
	errTEUnsupported  = newHTTPError(501, "unsupported transfer coding")
	errTEHTTP10       = newHTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
	errConnection     = newHTTPError(400, "malformed Connection field")
	errURITooLong     = newHTTPError(414, "request line too long")
	errHeadTooLarge   = newHTTPError(431, "request header section too large")
	errTooManyFields  = newHTTPError(431, "too many header fields")
	errConnect        = newHTTPError(405, "CONNECT is not supported")
	errIncomplete     = newHTTPError(400, "incomplete header section")
	errChunk          = newHTTPError(400, "invalid chunked framing")
)

// Backend-side errors, answered to the client as 502, 503 or 504.
var (
	errNoBackend       = errors.New("httpproxy: no usable backend")
	errBackendTimeout  = errors.New("httpproxy: backend read timeout")
	errBadResponse     = errors.New("httpproxy: malformed backend response")
	errResponseTooBig  = errors.New("httpproxy: backend response header section too large")
	errClientGone      = errors.New("httpproxy: client went away")
	errBackendBodyRead = errors.New("httpproxy: backend response body ended early")
)

// statusText is the reason phrase of the statuses the proxy itself sends.
func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}
