module github.com/tlsemit/tlsemit

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/olebedev/emitter v0.0.0-20230411050614-349169dec2ba
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.59.0
)
