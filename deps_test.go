package tlsemit_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLibraryImportsNoSDK: the library packages depend on the
// OpenTelemetry metrics API only; the SDK and exporters are the
// application's choice (tests and examples may use them). Nor does fleet
// import miniredis, which only its unit tests use.
func TestLibraryImportsNoSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./events", "./tlsserver", "./ocspfetch", "./crlfetch", "./statuspage", "./fleet").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, "go.opentelemetry.io/otel/metric") {
		t.Fatalf("go list -deps looks wrong: %d packages", len(deps))
	}
	for _, d := range deps {
		for _, banned := range []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "github.com/prometheus/", "github.com/alicebob/miniredis"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("a library package imports %s", d)
			}
		}
	}
}

// TestFleetParsesNoOCSP: fleet shares staples as opaque bytes (ocspfetch
// verifies them, and gives the Store their expiry), so it imports no OCSP
// parser of its own.
func TestFleetParsesNoOCSP(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./fleet").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := strings.Fields(string(out))
	if !slices.Contains(imports, "github.com/tlsemit/tlsemit/ocspfetch") {
		t.Fatalf("go list -f .Imports looks wrong: %v", imports)
	}
	if slices.Contains(imports, "golang.org/x/crypto/ocsp") {
		t.Error("fleet imports golang.org/x/crypto/ocsp")
	}
}
