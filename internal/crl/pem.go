package crl

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"runtime"
	"sync"
	"sync/atomic"
)

// Decode returns the CRLs in b as DER: b itself when it is DER (it starts
// with a SEQUENCE), else the bytes of each "X509 CRL" block of PEM (what
// Node's crl option takes), other blocks skipped. It is ErrMalformed when
// b is neither or holds no CRL.
//
// A PEM block's base64 is decoded line by line into one buffer, without
// the copy encoding/pem makes to strip line breaks first, and, for a large
// block of lines of one length, on every processor at once; a block with
// headers, or lines that are not whole base64 quanta, goes through
// encoding/pem.
func Decode(b []byte) ([][]byte, error) {
	rest := bytes.TrimLeft(b, " \t\r\n")
	if len(rest) > 0 && rest[0] == 0x30 {
		return [][]byte{b}, nil
	}
	var out [][]byte
	for {
		begin := bytes.Index(rest, []byte("-----BEGIN "))
		if begin < 0 {
			break
		}
		rest = rest[begin:]
		eol := bytes.IndexByte(rest, '\n')
		if eol < 0 {
			break
		}
		header := bytes.TrimRight(rest[:eol], " \t\r")
		typ, ok := bytes.CutPrefix(header, []byte("-----BEGIN "))
		if typ, ok = bytes.CutSuffix(typ, []byte("-----")); !ok {
			rest = rest[eol:]
			continue
		}
		end := []byte("-----END " + string(typ) + "-----")
		stop := bytes.Index(rest, end)
		if stop < 0 {
			return nil, malformed("PEM block " + string(typ) + " without its END line")
		}
		block := rest[:stop+len(end)]
		rest = rest[stop+len(end):]
		if string(typ) != "X509 CRL" {
			continue
		}
		der, ok := decodeLines(block[eol+1 : stop])
		if !ok {
			p, _ := pem.Decode(block)
			if p == nil || len(p.Headers) > 0 {
				return nil, malformed("X509 CRL PEM block")
			}
			der = p.Bytes
		}
		out = append(out, der)
	}
	switch {
	case len(out) > 0:
	case bytes.Contains(b, []byte("-----BEGIN ")):
		return nil, malformed("no X509 CRL PEM block")
	default:
		return nil, malformed("neither DER nor PEM")
	}
	return out, nil
}

// parallelMin is the body from which decodeLines shares the work among
// the processors: a 1,000,000-entry CRL is 46 MB of base64.
const parallelMin = 1 << 20

// decodeLines decodes base64 lines, each a whole number of quanta (every
// PEM writer's 64 characters), into one buffer; false for anything else
// (headers, odd line lengths, bad characters), which encoding/pem handles.
func decodeLines(body []byte) ([]byte, bool) {
	if len(body) >= parallelMin && runtime.GOMAXPROCS(0) > 1 {
		if der, ok := decodeUniform(body); ok {
			return der, true
		}
	}
	return decodeSeq(body)
}

// decodeUniform decodes lines that all have the length of the first (and
// its line ending) but the last ones, several stretches at once: each
// line's place in the output follows from its index.
func decodeUniform(body []byte) ([]byte, bool) {
	i := bytes.IndexByte(body, '\n')
	if i <= 0 {
		return nil, false
	}
	width, eol := i, body[i:i+1]
	if body[i-1] == '\r' {
		width, eol = i-1, body[i-1:i+1]
	}
	stride, out := width+len(eol), width/4*3
	if width%4 != 0 {
		return nil, false
	}
	lines := len(body)/stride - 1 // the last whole line may end in padding: decodeSeq takes it
	if lines < 1 {
		return nil, false
	}
	tail := body[lines*stride:]
	dst := make([]byte, lines*out+base64.StdEncoding.DecodedLen(len(tail)))
	workers := min(runtime.GOMAXPROCS(0), 8)
	per := (lines + workers - 1) / workers
	var bad atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		from, to := w*per, min((w+1)*per, lines)
		if from >= to {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := from; j < to && !bad.Load(); j++ {
				line := body[j*stride : j*stride+width]
				if !bytes.Equal(body[j*stride+width:(j+1)*stride], eol) {
					bad.Store(true)
					return
				}
				// Exactly the line's bytes: the decoder writes 8 bytes at
				// a time while it has room, which would run into the
				// next line, another goroutine's.
				if n, err := base64.StdEncoding.Decode(dst[j*out:(j+1)*out:(j+1)*out], line); err != nil || n != out {
					bad.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() {
		return nil, false
	}
	rest, ok := decodeSeq(tail)
	if !ok {
		return nil, false
	}
	n := lines*out + copy(dst[lines*out:], rest)
	return dst[:n:n], true
}

// decodeSeq decodes the lines one after the other.
func decodeSeq(body []byte) ([]byte, bool) {
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.Trim(line, " \t\r")
		if len(line) == 0 {
			continue
		}
		if len(line)%4 != 0 {
			return nil, false
		}
		m, err := base64.StdEncoding.Decode(dst[n:], line)
		if err != nil {
			return nil, false
		}
		n += m
		if m < len(line)/4*3 && len(bytes.TrimSpace(body)) > 0 {
			return nil, false // padding before the last line
		}
	}
	return dst[:n:n], true
}
