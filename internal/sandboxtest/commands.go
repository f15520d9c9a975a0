package sandboxtest

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/mongoconn"
)

// Commands records every command a client sends and how it ended, through the driver's command
// monitor: what a test asserts of the options each path sends (read and write concerns,
// bypassDocumentValidation, maxTimeMS) is what went over the wire, whether or not the sandbox
// server acts on it.
type Commands struct {
	mu      sync.Mutex
	sent    []*Command
	byID    map[int64]*Command
	onStart []func(*event.CommandStartedEvent)
}

// Command is one command sent.
type Command struct {
	Name string   // "insert", "update", "find", ...
	DB   string   // the database it was sent to
	Body bson.Raw // the command as sent
	// Outcome is "" while no reply has come, then "ok" or the failure.
	Outcome string
}

// Collection is the collection the command names (its first field's value), "" when none.
func (c *Command) Collection() string {
	s, _ := c.Body.Lookup(c.Name).StringValueOK()
	return s
}

// NewCommands returns an empty record.
func NewCommands() *Commands { return &Commands{byID: map[int64]*Command{}} }

// OnStart runs f in the sending goroutine before each command is sent: it may block it, to hold an
// operation at that point (the driver checks its context again after f returns).
func (c *Commands) OnStart(f func(*event.CommandStartedEvent)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onStart = append(c.onStart, f)
}

// Monitor is the command monitor to give a client.
func (c *Commands) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			cmd := &Command{Name: e.CommandName, DB: e.DatabaseName, Body: append(bson.Raw(nil), e.Command...)}
			c.mu.Lock()
			c.sent = append(c.sent, cmd)
			c.byID[e.RequestID] = cmd
			hooks := append([]func(*event.CommandStartedEvent){}, c.onStart...)
			c.mu.Unlock()
			for _, f := range hooks {
				f(e)
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { c.end(e.RequestID, "ok") },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { c.end(e.RequestID, e.Failure) },
	}
}

func (c *Commands) end(id int64, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cmd, ok := c.byID[id]; ok {
		cmd.Outcome = outcome
		delete(c.byID, id)
	}
}

// Sent returns the commands named name (all when name is "") sent to db.coll, in the order they
// were sent; an empty db or coll matches any.
func (c *Commands) Sent(name, db, coll string) []Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Command
	for _, cmd := range c.sent {
		if (name == "" || cmd.Name == name) && (db == "" || cmd.DB == db) && (coll == "" || cmd.Collection() == coll) {
			out = append(out, *cmd)
		}
	}
	return out
}

// ConnectWith returns a client for uri with opts (a monitor, an operation timeout), disconnected
// when the test ends.
func ConnectWith(t testing.TB, uri string, opts mongoconn.Options) *mongo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if opts.ServerSelectionTimeout == 0 {
		opts.ServerSelectionTimeout = connectTimeout
	}
	client, err := mongoconn.ConnectWith(ctx, "test", uri, opts)
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}
