// Package tlsemit gives Go TLS servers the event model of Node.js's
// tls.Server and EventEmitter.
//
// The module has three packages:
//
//   - [github.com/tlsemit/tlsemit/events]: Node's EventEmitter semantics
//     (order, once, prepend, removal during emit, meta events, 'error',
//     the max-listener warning), safe for concurrent use, plus channel
//     subscriptions for Go-style consumers.
//   - [github.com/tlsemit/tlsemit/tlsserver]: a crypto/tls server that emits
//     Node's server events, 'OCSPRequest' above all, with Node's contract.
//   - [github.com/tlsemit/tlsemit/ocspfetch]: the OCSP stapler a Node user
//     writes inside the 'OCSPRequest' listener, done properly: responder
//     lookup, verification, caching and background refresh.
//
// See docs/porting-from-node.md for every Node name and its Go form.
package tlsemit
