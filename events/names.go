package events

// Event names with a meaning to the emitter itself.
const (
	// EventError is the event whose emission panics when nobody listens.
	EventError = "error"
	// EventNewListener is emitted before a listener is added, with
	// (event string, fn Listener, id ID).
	EventNewListener = "newListener"
	// EventRemoveListener is emitted after a listener is removed, with
	// (event string, fn Listener, id ID).
	EventRemoveListener = "removeListener"
	// ErrorMonitor is Node's events.errorMonitor: its listeners see every
	// "error" emission before the "error" listeners do, and do not count as
	// handling it. Node uses a Symbol; this name cannot clash with an event
	// name a Node program would use.
	ErrorMonitor = "events.errorMonitor"
)

// DefaultMaxListeners is the per-event listener count above which an
// Emitter warns, unless SetMaxListeners says otherwise (Node's
// EventEmitter.defaultMaxListeners).
const DefaultMaxListeners = 10
