package httpfetch

import (
	"net/netip"
	"testing"
)

// TestInternalAddr: what a certificate may not point a server at.
func TestInternalAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "192.168.0.1": true, "172.16.0.1": true,
		"169.254.169.254": true, "fe80::1": true, "fc00::1": true, "100.64.0.1": true, "0.0.0.0": true,
		"::ffff:127.0.0.1": true, "8.8.8.8": false, "2606:4700::1111": false,
	} {
		if got := internalAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("internalAddr(%s) = %v", addr, got)
		}
	}
}
