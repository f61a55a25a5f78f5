//go:build !amd64 && !arm64

package ocsptest

// sysSetns is unknown here: Start falls back to plain loopback.
const sysSetns = -1
