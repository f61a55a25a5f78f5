package events_test

import (
	"fmt"

	"github.com/tlsemit/tlsemit/events"
)

// JobQueue is Node's `class JobQueue extends EventEmitter`: a struct that
// embeds events.Emitter has its methods (On, Once, Off, Emit,
// ListenerCount…), and its own methods emit through them.
type JobQueue struct {
	events.Emitter
	pushed int
}

// Push queues a job and emits 'job' with its number and name.
func (q *JobQueue) Push(name string) {
	q.pushed++
	q.Emit("job", q.pushed, name)
}

func Example_embedding() {
	var q JobQueue // the zero value is ready, as the Emitter's is
	q.On("job", func(args ...any) { fmt.Println("job", args[0], args[1]) })
	q.Once("job", func(...any) { fmt.Println("the first job came") })
	q.Push("resize")
	q.Push("upload")
	fmt.Println(q.ListenerCount("job"))
	// Output:
	// job 1 resize
	// the first job came
	// job 2 upload
	// 1
}
