package tlsemit_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/statuspage"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// The metrics of a server and its Fetcher exported to Prometheus, and the
// status page beside them, on an internal listener. The application picks
// the OpenTelemetry SDK and exporter; tlsemit depends on the API only.
func Example_prometheus() {
	pki := newPKI() // the CA, its responder and the server's certificate
	defer pki.Close()

	// The SDK with the Prometheus exporter as its reader. (An application
	// usually also calls otel.SetMeterProvider(provider) and leaves
	// Options.MeterProvider nil.)
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry),
		otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo()) // shorter lines for this example

	if err != nil {
		panic(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())

	fetcher, err := ocspfetch.New(ocspfetch.Options{MeterProvider: provider})
	if err != nil {
		panic(err)
	}
	defer fetcher.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}, MeterProvider: provider})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.OnOCSPRequest(fetcher.OCSPRequest)
	served := make(chan struct{}, 2)
	srv.OnSecureConnection(func(c *tls.Conn) { // after the server has counted the handshake
		c.Close()
		served <- struct{}{}
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}

	// The operator's listener: never the public one.
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.Handle("/debug/tlsemit/", statuspage.Handler(srv, fetcher))
	internal := httptest.NewServer(mux)
	defer internal.Close()

	for range 2 { // a cold handshake, then a warm one
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
		if err != nil {
			panic(err)
		}
		conn.Close()
		<-served
	}

	// What Prometheus scrapes.
	resp, err := http.Get(internal.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range []string{"tlsemit_server_handshakes_total{", "tlsemit_ocsp_answers_total{", "tlsemit_ocsp_responder_requests_total{"} {
			if strings.HasPrefix(line, name) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// tlsemit_ocsp_answers_total{tlsemit_ocsp_status="good"} 2
	// tlsemit_ocsp_answers_total{tlsemit_ocsp_status="none"} 0
	// tlsemit_ocsp_answers_total{tlsemit_ocsp_status="revoked"} 0
	// tlsemit_ocsp_responder_requests_total{tlsemit_ocsp_status="good"} 1
	// tlsemit_server_handshakes_total{tls_protocol_version="1.3",tlsemit_handshake_outcome="full"} 2
}
