// Package mongoconn opens driver clients the way every fleetsync command needs them: the URI checked
// up front, a bounded server-selection timeout so an unreachable server fails fast instead of hanging,
// and errors that never carry the credentials inside the URI.
package mongoconn

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/x/mongo/driver/connstring"
)

// DefaultServerSelectionTimeout bounds how long a command waits for an unreachable cluster before it
// gives up with an error. The driver's own default (30 s) reads as a hang to someone at a terminal.
const DefaultServerSelectionTimeout = 10 * time.Second

// appName tags fleetsync's connections in the servers' logs and currentOp output.
const appName = "fleetsync"

// Connect validates uri, connects, and pings the primary so that a wrong host, port or password is
// reported here rather than at the first real operation. label names the cluster in error messages
// ("cluster0", "source", ...). The returned error never contains the password.
func Connect(ctx context.Context, label, uri string, serverSelectionTimeout time.Duration) (*mongo.Client, error) {
	return ConnectWith(ctx, label, uri, Options{ServerSelectionTimeout: serverSelectionTimeout})
}

// Options are a connection's settings beyond its URI.
type Options struct {
	// ServerSelectionTimeout bounds the wait for an unreachable server; 0: DefaultServerSelectionTimeout.
	ServerSelectionTimeout time.Duration
	// OperationTimeout, when set, turns on the driver's client-side operation timeout for every
	// operation of the client: an operation is bounded by its context's deadline (or by this
	// timeout when its context has none), and the driver sends what is left of that bound to the
	// server as maxTimeMS, so that the server too stops a write its sender has given up on. Without
	// it (driver 1.17) a context deadline stays on the client: a write queued on the server runs
	// whenever the server gets to it. It also caps every other operation, so it is for clients that
	// only send bounded data writes (see FencedWrites), never for index builds, cursors or
	// change streams.
	OperationTimeout time.Duration
	// Monitor sees every command the client sends and its outcome (wire-level tests).
	Monitor *event.CommandMonitor
}

// ConnectWith connects like Connect, with o's settings.
func ConnectWith(ctx context.Context, label, uri string, o Options) (*mongo.Client, error) {
	if _, err := Parse(label, uri); err != nil {
		return nil, err
	}
	serverSelectionTimeout := o.ServerSelectionTimeout
	if serverSelectionTimeout <= 0 {
		serverSelectionTimeout = DefaultServerSelectionTimeout
	}
	opts := options.Client().ApplyURI(uri).
		SetAppName(appName).
		SetServerSelectionTimeout(serverSelectionTimeout).
		SetConnectTimeout(serverSelectionTimeout)
	if o.OperationTimeout > 0 {
		opts.SetTimeout(o.OperationTimeout)
	}
	if o.Monitor != nil {
		opts.SetMonitor(o.Monitor)
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot connect to %s: %s", label, Redact(uri), redactErr(err, uri))
	}
	pingCtx, cancel := context.WithTimeout(ctx, serverSelectionTimeout+time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("%s: cannot reach %s within %s: %s", label, Redact(uri), serverSelectionTimeout, shortReason(err, uri))
	}
	return client, nil
}

// Parse validates uri and returns its parts; the error names the cluster by label and never
// contains the password.
func Parse(label, uri string) (*connstring.ConnString, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a valid MongoDB connection string (%s); expected mongodb://host:port/ or mongodb+srv://host/",
			label, Redact(uri), redactErr(err, uri))
	}
	return cs, nil
}

// shortReason reduces the driver's server-selection error, which lists the whole topology on one very
// long line, to its cause.
func shortReason(err error, uri string) string {
	msg := redactErr(err, uri)
	if i := strings.Index(msg, ", current topology:"); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// Redact returns uri with any password replaced by "xxxxx", for logs and messages.
func Redact(uri string) string {
	u, ok := splitUserinfo(uri)
	if !ok {
		return uri
	}
	return u.beforeUser + u.user + ":xxxxx" + u.afterPassword
}

// redactErr renders err with the raw password, escaped or not, removed: the driver and net/url quote
// the URI into some of their messages.
func redactErr(err error, uri string) string {
	msg := err.Error()
	u, ok := splitUserinfo(uri)
	if !ok || u.password == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, u.password, "xxxxx")
	if decoded, err := url.PathUnescape(u.password); err == nil && decoded != "" {
		msg = strings.ReplaceAll(msg, decoded, "xxxxx")
	}
	return msg
}

// userinfo is a connection string cut around its password.
type userinfo struct {
	beforeUser, user, password, afterPassword string
}

// splitUserinfo finds "user:password@" in a connection string; ok is false when there is no password.
// The userinfo ends at the last '@' before the first '/' or '?': an escaped password may contain '@',
// but a raw '@' in the host list is never valid.
func splitUserinfo(uri string) (userinfo, bool) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return userinfo{}, false
	}
	hostEnd := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostEnd = i
	}
	at := strings.LastIndex(rest[:hostEnd], "@")
	if at < 0 {
		return userinfo{}, false
	}
	user, password, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return userinfo{}, false
	}
	return userinfo{beforeUser: scheme + "://", user: user, password: password, afterPassword: rest[at:]}, true
}
