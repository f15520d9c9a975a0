package retryable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// serverError builds the error the driver returns for a reply document the server sent: a
// mongo.CommandError for a command that failed (ok: 0), a mongo.WriteException for a write whose
// documents or write concern failed (ok: 1 with writeErrors or writeConcernError), as the mongo
// package does from the same fields.
func serverError(t *testing.T, reply string) error {
	t.Helper()
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(reply), false, &doc); err != nil {
		t.Fatalf("reply %s: %v", reply, err)
	}
	var r struct {
		OK          float64  `bson:"ok"`
		Code        int32    `bson:"code"`
		CodeName    string   `bson:"codeName"`
		Errmsg      string   `bson:"errmsg"`
		ErrorLabels []string `bson:"errorLabels"`
		WriteErrors []struct {
			Index  int    `bson:"index"`
			Code   int    `bson:"code"`
			Errmsg string `bson:"errmsg"`
		} `bson:"writeErrors"`
		WriteConcernError *struct {
			Code     int    `bson:"code"`
			CodeName string `bson:"codeName"`
			Errmsg   string `bson:"errmsg"`
		} `bson:"writeConcernError"`
	}
	if err := bson.Unmarshal(doc, &r); err != nil {
		t.Fatalf("reply %s: %v", reply, err)
	}
	if r.OK == 0 {
		return mongo.CommandError{Code: r.Code, Name: r.CodeName, Message: r.Errmsg, Labels: r.ErrorLabels, Raw: doc}
	}
	we := mongo.WriteException{Labels: r.ErrorLabels, Raw: doc}
	for _, e := range r.WriteErrors {
		we.WriteErrors = append(we.WriteErrors, mongo.WriteError{Index: e.Index, Code: e.Code, Message: e.Errmsg})
	}
	if w := r.WriteConcernError; w != nil {
		we.WriteConcernError = &mongo.WriteConcernError{Name: w.CodeName, Code: w.Code, Message: w.Errmsg}
	}
	return we
}

// TestIsOnServerReplies classifies the replies MongoDB sends during a failover, a shutdown, a slow
// majority, and for documents it refuses, as fleetsync's copy and applier receive them (wrapped in
// their own context).
func TestIsOnServerReplies(t *testing.T) {
	for _, c := range []struct {
		name, reply string
		retryable   bool
	}{
		{"write to a secondary after a step-down", `{"ok": 0, "errmsg": "not primary", "code": 10107, "codeName": "NotWritablePrimary", "errorLabels": ["RetryableWriteError"]}`, true},
		{"not primary, before 4.4 labels", `{"ok": 0, "errmsg": "not master", "code": 10107, "codeName": "NotMaster"}`, true},
		{"read from a secondary without secondaryOk", `{"ok": 0, "errmsg": "not master and slaveOk=false", "code": 13435, "codeName": "NotPrimaryNoSecondaryOk"}`, true},
		{"node in recovery", `{"ok": 0, "errmsg": "node is not in primary or recovering state", "code": 13436, "codeName": "NotPrimaryOrSecondary"}`, true},
		{"shutting down", `{"ok": 0, "errmsg": "The server is in quiesce mode and will shut down", "code": 91, "codeName": "ShutdownInProgress", "errorLabels": ["RetryableWriteError"]}`, true},
		{"interrupted at shutdown", `{"ok": 0, "errmsg": "interrupted at shutdown", "code": 11600, "codeName": "InterruptedAtShutdown"}`, true},
		{"stepped down mid-operation", `{"ok": 0, "errmsg": "operation was interrupted because a node stepped down", "code": 11602, "codeName": "InterruptedDueToReplStateChange"}`, true},
		{"stepped down while waiting for replication", `{"ok": 1, "n": 1, "writeConcernError": {"code": 189, "codeName": "PrimarySteppedDown", "errmsg": "Primary stepped down while waiting for replication"}, "errorLabels": ["RetryableWriteError"]}`, true},
		{"majority write concern timed out", `{"ok": 1, "n": 1000, "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": true}}}`, true},
		{"maxTimeMS expired", `{"ok": 0, "errmsg": "operation exceeded time limit", "code": 50, "codeName": "MaxTimeMSExpired"}`, true},
		{"mongos: shard timed out", `{"ok": 0, "errmsg": "Couldn't get a connection within the time limit", "code": 262, "codeName": "ExceededTimeLimit"}`, true},
		{"mongos: shard unreachable", `{"ok": 0, "errmsg": "Connection refused", "code": 6, "codeName": "HostUnreachable"}`, true},
		{"mongos: socket", `{"ok": 0, "errmsg": "socket exception [SEND_ERROR]", "code": 9001, "codeName": "SocketException"}`, true},
		{"majority read not available yet", `{"ok": 0, "errmsg": "Read concern majority reads are currently not possible.", "code": 134, "codeName": "ReadConcernMajorityNotAvailableYet"}`, true},
		{"label alone", `{"ok": 0, "errmsg": "transaction aborted", "code": 251, "codeName": "NoSuchTransaction", "errorLabels": ["TransientTransactionError"]}`, true},

		{"duplicate key", `{"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error collection: shop.orders index: email_1 dup key: { email: \"a@b\" }", "keyPattern": {"email": 1}, "keyValue": {"email": "a@b"}}]}`, false},
		{"document validation", `{"ok": 1, "n": 0, "writeErrors": [{"index": 3, "code": 121, "errmsg": "Document failed validation"}]}`, false},
		{"document too large", `{"ok": 0, "errmsg": "object to insert too large. size in bytes: 16777300, max size: 16777216", "code": 10334, "codeName": "BSONObjectTooLarge"}`, false},
		{"unauthorized", `{"ok": 0, "errmsg": "not authorized on shop to execute command { insert: \"orders\" }", "code": 13, "codeName": "Unauthorized"}`, false},
		{"namespace not found", `{"ok": 0, "errmsg": "ns does not exist", "code": 26, "codeName": "NamespaceNotFound"}`, false},
		{"sandbox: no error code", `{"ok": 0, "errmsg": "source namespace does not exist"}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := fmt.Errorf("writing 1000 documents of shop.orders to the destination: %w", serverError(t, c.reply))
			if got := Is(err); got != c.retryable {
				t.Errorf("Is(%v) = %v, want %v", err, got, c.retryable)
			}
		})
	}
}

// TestIsOnClientErrors covers what the driver reports without a server reply.
func TestIsOnClientErrors(t *testing.T) {
	network := mongo.CommandError{Labels: []string{"NetworkError"}, Wrapped: &net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}}
	for _, c := range []struct {
		name      string
		err       error
		retryable bool
	}{
		{"connection closed mid-reply", network, true},
		{"deadline", context.DeadlineExceeded, true},
		{"cancelled by the caller", context.Canceled, false},
		{"no error", nil, false},
		{"a plain error", errors.New("partition shop.orders/000001 has a malformed namespace"), false},
	} {
		if got := Is(c.err); got != c.retryable {
			t.Errorf("%s: Is(%v) = %v, want %v", c.name, c.err, got, c.retryable)
		}
	}
}
