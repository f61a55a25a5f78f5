// Package fleet makes many tlsemit servers behave as one server to their
// clients, sharing through Redis what a Node fleet shares by hand:
//
//   - [Fleet.TicketKeys]: session-ticket keys that rotate fleet-wide, so a
//     ticket issued by any member resumes on every member, with no Redis
//     call on the handshake;
//   - [Fleet.Sessions]: Node's external session store ('newSession' and
//     'resumeSession' over Redis), for fleets that keep sessions rather
//     than self-contained tickets;
//   - [Fleet.Store]: an [ocspfetch.LockingStore], so that the whole fleet
//     asks the OCSP responder once per certificate per refresh and every
//     member staples the answer.
//
// One Fleet per process, given the fleet-wide Secret and any
// redis.UniversalClient (single node, Sentinel, Cluster):
//
//	fl, err := fleet.New(fleet.Options{Redis: rdb, Secret: secret})
//	...
//	fetcher, err := ocspfetch.New(ocspfetch.Options{Store: fl.Store()})
//	srv.OnOCSPRequest(fetcher.OCSPRequest)
//	detach, err := fl.TicketKeys(ctx, srv)
//
// Redis down or slow costs resumption and sharing, never a handshake: every
// call has a deadline (OpTimeout), a failing feature is skipped while a
// goroutine of the fleet's probes Redis, staples in memory keep being
// served, and ticket keys fall back to the last known keys, then to a key
// of the member's own; keys Redis lost are written back from what the
// members know. A caller's cancelled context is never taken for an outage.
// Stats tells an operator where things stand. Nothing secret is stored in the clear: session state and
// ticket keys are sealed with a key derived from Secret, bound to their
// Redis key name. Staples are public, and verified on every load.
//
// docs/fleet.md gives the key schema, the rotation, the security model and
// a model of the load at scale.
package fleet
