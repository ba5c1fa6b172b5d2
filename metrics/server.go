// Package metrics serves a node's Prometheus metrics and its health checks
// (/metrics, /healthz, /readyz) over HTTP.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redmesh/redmesh/node"
)

// Server is the metrics and health listener. It starts before the node
// opens, so that /healthz answers and /readyz says "loading" while the node
// loads its data; SetNode hands it the node once open.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	node atomic.Pointer[node.Node]
	log  *slog.Logger
	done chan struct{}
	reg  *prometheus.Registry
}

// ListenAddr is addr as --metrics-listen takes it: HOST:PORT, or a bare
// port, which means loopback.
func ListenAddr(addr string) (string, error) {
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", addr), nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("metrics address %q: want HOST:PORT or a port: %w", addr, err)
	}
	return addr, nil
}

// Listen binds addr (see ListenAddr) and serves until Close.
func Listen(addr string, log *slog.Logger) (*Server, error) {
	addr, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	s := &Server{ln: ln, log: log, done: make(chan struct{}), reg: reg}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{stats: s.stats, ready: s.ready},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// SetNode makes the server report n (nil: the node is gone).
func (s *Server) SetNode(n *node.Node) { s.node.Store(n) }

// Close stops serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

func (s *Server) stats() (node.Stats, bool) {
	n := s.node.Load()
	if n == nil {
		return node.Stats{}, false
	}
	return n.Stats(), true
}

func (s *Server) ready() bool {
	ok, _ := s.readiness()
	return ok
}

func (s *Server) readiness() (bool, string) {
	n := s.node.Load()
	if n == nil {
		return false, "loading"
	}
	return n.Ready()
}

// serveReady is /readyz: 200 once the node is ready, 503 with what it
// waits for until then.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.readiness()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}

// Register adds collectors of other parts of the process (the Redis
// bridge) to /metrics.
func (s *Server) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
