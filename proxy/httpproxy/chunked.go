package httpproxy

import "strconv"

// Limits on chunked framing.
const (
	maxChunkLine = 4 << 10  // a chunk-size line with its extensions
	maxTrailer   = 16 << 10 // the trailer section
	maxChunkSize = 1 << 53
)

// chunk parser states.
const (
	ckSize    uint8 = iota // hex digits of a chunk size
	ckSizeWS               // whitespace after the size: only before ";"
	ckExt                  // chunk extensions, up to CR
	ckSizeLF               // LF ending the size line
	ckData                 // chunk data
	ckDataCR               // CR after the data
	ckDataLF               // LF after the data
	ckTrailer              // start of a trailer line, or of the final CRLF
	ckTrName               // trailer field name
	ckTrValue              // trailer field value, up to CR
	ckTrLF                 // LF ending a trailer line
	ckEndLF                // LF of the final CRLF
	ckDone
)

// chunkParser follows a chunked body (RFC 9112 §7.1) as it streams by, to
// find where it ends and which bytes are data. It is strict: hex sizes
// without overflow, CRLF and only CRLF after every line and every chunk,
// no control characters in extensions or trailers, no obsolete folding.
// Anything else is errChunk: the sender and the next hop might disagree on
// where the message ends.
type chunkParser struct {
	state   uint8
	digits  int
	size    int64 // current chunk's size while reading it
	left    int64 // data bytes left in the current chunk
	line    int   // bytes of the current size line
	trailer int   // bytes of the trailer section
	sizes   int   // chunk size lines read
}

// done reports whether the whole body, trailers included, went by.
func (c *chunkParser) done() bool { return c.state == ckDone }

// next consumes p up to the end of the next run of chunk data, or all of p
// if no data starts in it, or up to the end of the body. It returns n, the
// bytes consumed, and ds: p[ds:n] is chunk data and p[:ds] framing.
func (c *chunkParser) next(p []byte) (n, ds int, err error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch c.state {
		case ckSize:
			v := unhex(b)
			switch {
			case v >= 0:
				c.size = c.size<<4 | int64(v)
				c.digits++
				if c.size > maxChunkSize || c.digits > 16 {
					return 0, 0, errChunk
				}
				c.line++
				continue
			case c.digits == 0:
				return 0, 0, errChunk
			case b == ' ' || b == '\t':
				c.state = ckSizeWS
			case b == ';':
				c.state = ckExt
			case b == '\r':
				c.state = ckSizeLF
			default:
				return 0, 0, errChunk
			}
			c.line++
		case ckSizeWS:
			switch b {
			case ' ', '\t':
			case ';':
				c.state = ckExt
			default:
				return 0, 0, errChunk
			}
			c.line++
		case ckExt:
			switch {
			case b == '\r':
				c.state = ckSizeLF
			case !valueOK[b]:
				return 0, 0, errChunk
			}
			c.line++
			if c.line > maxChunkLine {
				return 0, 0, errChunk
			}
		case ckSizeLF:
			if b != '\n' {
				return 0, 0, errChunk
			}
			c.line, c.digits = 0, 0
			c.sizes++
			if c.size == 0 {
				c.state = ckTrailer
				continue
			}
			c.left, c.size = c.size, 0
			c.state = ckData
			// Data starts after this LF.
			ds = i + 1
			take := min(int64(len(p)-ds), c.left)
			c.left -= take
			if c.left == 0 {
				c.state = ckDataCR
			}
			return ds + int(take), ds, nil
		case ckData:
			// Only reached when a call starts inside data.
			take := min(int64(len(p)), c.left)
			c.left -= take
			if c.left == 0 {
				c.state = ckDataCR
			}
			return int(take), 0, nil
		case ckDataCR:
			if b != '\r' {
				return 0, 0, errChunk
			}
			c.state = ckDataLF
		case ckDataLF:
			if b != '\n' {
				return 0, 0, errChunk
			}
			c.state = ckSize
		case ckTrailer:
			switch {
			case b == '\r':
				c.state = ckEndLF
			case tchar[b]:
				c.state = ckTrName
			default:
				return 0, 0, errChunk // includes obs-fold
			}
			c.trailer++
		case ckTrName:
			switch {
			case b == ':':
				c.state = ckTrValue
			case !tchar[b]:
				return 0, 0, errChunk
			}
			c.trailer++
		case ckTrValue:
			switch {
			case b == '\r':
				c.state = ckTrLF
			case !valueOK[b]:
				return 0, 0, errChunk
			}
			c.trailer++
		case ckTrLF:
			if b != '\n' {
				return 0, 0, errChunk
			}
			c.state = ckTrailer
			c.trailer++
		case ckEndLF:
			if b != '\n' {
				return 0, 0, errChunk
			}
			c.state = ckDone
			return i + 1, i + 1, nil
		case ckDone:
			return i, i, nil
		}
		if c.trailer > maxTrailer {
			return 0, 0, errChunk
		}
	}
	return len(p), len(p), nil
}

func unhex(b byte) int {
	switch {
	case '0' <= b && b <= '9':
		return int(b - '0')
	case 'a' <= b && b <= 'f':
		return int(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// appendChunkHeader appends the size line of a chunk of n bytes.
func appendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, '\r', '\n')
}
