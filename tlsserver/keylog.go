package tlsserver

import (
	"bytes"
	"io"
	"net"
)

// keylogWriter is a handshake's KeyLogWriter: each line becomes a 'keylog'
// emission (and still goes to the configured writer, if any).
type keylogWriter struct {
	c    *serverConn
	next io.Writer
}

func (w *keylogWriter) Write(p []byte) (int, error) {
	if w.next != nil {
		w.next.Write(p)
	}
	if err := w.c.emit(EventKeylog, bytes.Clone(p), net.Conn(w.c.tls)); err != nil {
		return 0, w.c.destroy(err)
	}
	return len(p), nil
}
