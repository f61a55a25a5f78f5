package crltest

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Server is a CRL host on 127.0.0.1: it serves the bodies set per path,
// with an ETag and 304 Not Modified for a matching If-None-Match, or what
// a handler set for a path does (a hostile host's shapes). Requests are
// counted per path. It is closed when the test ends.
type Server struct {
	URL string

	mu       sync.Mutex
	bodies   map[string][]byte
	handlers map[string]http.HandlerFunc
	hits     map[string]int
	srv      *httptest.Server
}

// NewServer starts a Server.
func NewServer(t testing.TB) *Server {
	s := &Server{bodies: map[string][]byte{}, handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Set serves body at path (replacing a handler).
func (s *Server) Set(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies[path] = body
	delete(s.handlers, path)
}

// Handle serves path with h.
func (s *Server) Handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
	delete(s.bodies, path)
}

// Hits returns how many requests path has had.
func (s *Server) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	body, ok := s.bodies[r.URL.Path]
	h := s.handlers[r.URL.Path]
	s.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(body)
}
