package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/membership"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/web"
)

// apiRig is one node's API over real sandbox servers, with no coordinator or applier running, so
// that the sync stays in whatever state a test puts it: what the API alone does to the shared
// state is all there is to see.
type apiRig struct {
	n        *node
	srv      *httptest.Server
	clusters sandboxtest.Clusters
}

func newAPIRig(t *testing.T, sandbox bool) *apiRig {
	t.Helper()
	ctx := context.Background()
	c := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	srcID, _ := Identity("cluster0", c.Source)
	dstID, _ := Identity("cluster1", c.Destination)
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	s, err := meta.Register(ctx, srcID, dstID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := membership.Join(ctx, membership.Options{SyncID: "default", Name: "api", BindAddr: "127.0.0.1",
		Registry: meta.Collection(metadata.CollNodes)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Leave(context.Background()) })
	n := &node{
		cfg: Config{SyncID: "default", Name: "api", MetadataDB: namespace.DefaultMetadataDB, Sandbox: sandbox,
			ChangeSource: applier.ModeAuto},
		log: zap.NewNop(), source: src, destination: dst, meta: meta,
		partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"),
		srcID:      srcID, dstID: dstID, stateChanged: make(chan struct{}),
	}
	n.sync.Store(&s)
	n.members.Store(m)
	srv := httptest.NewServer(web.New(n, zap.NewNop()))
	t.Cleanup(srv.Close)
	return &apiRig{n: n, srv: srv, clusters: c}
}

// put sets the sync document's lifecycle fields, as a coordinator would have left them.
func (r *apiRig) put(t *testing.T, set bson.D, unset ...string) {
	t.Helper()
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		u := bson.D{}
		for _, f := range unset {
			u = append(u, bson.E{Key: f, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: u})
	}
	if _, err := r.n.meta.Syncs().UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "default"}}, update); err != nil {
		t.Fatal(err)
	}
}

// snapshot is the sync document as stored.
func (r *apiRig) snapshot(t *testing.T) bson.Raw {
	t.Helper()
	raw, err := r.n.meta.Syncs().FindOne(context.Background(), bson.D{{Key: "_id", Value: "default"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// caughtUp writes an applier checkpoint at the source's latest time, so that canCommit holds.
func (r *apiRig) caughtUp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	now, err := clusterclock.Now(ctx, r.n.source)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.n.meta.Collection(metadata.CollCheckpoints).UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "source", Value: applier.SourceOplog}, {Key: "position", Value: applier.Position{TS: now}}}}},
		options.Update().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
}

// reply is any API answer.
type reply struct {
	Success          bool         `json:"success"`
	Error            string       `json:"error"`
	ErrorDescription string       `json:"errorDescription"`
	Progress         web.Progress `json:"progress"`
}

func (r *apiRig) call(t *testing.T, method, path, body string) (int, reply, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out reply
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s answered %d with %q, not JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, string(raw)
}

// states sets up each state a sync can be in, as its coordinator would leave it.
var states = []struct {
	name  string
	state string
	setup func(t *testing.T, r *apiRig)
}{
	{"IDLE", metadata.StateIdle, func(t *testing.T, r *apiRig) {}},
	{"RUNNING copying", metadata.StateRunning, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCopy}})
	}},
	{"RUNNING caught up", metadata.StateRunning, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseApply}})
		r.caughtUp(t)
	}},
	{"PAUSED", metadata.StatePaused, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StatePaused}, {Key: "phase", Value: metadata.PhaseApply}})
		r.caughtUp(t)
	}},
	{"COMMITTING", metadata.StateCommitting, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepCatchUp, RequestedAt: time.Now()}}})
	}},
	{"COMMITTED", metadata.StateCommitted, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateCommitted}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepFinished, RequestedAt: time.Now(), CommittedAt: time.Now(),
				DestinationPoint: primitive.Timestamp{T: 1, I: 1}}}})
	}},
	{"COMMITTED reversible", metadata.StateCommitted, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateCommitted}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "options.reversible", Value: true},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepFinished, RequestedAt: time.Now(), CommittedAt: time.Now(),
				DestinationPoint: primitive.Timestamp{T: 1, I: 1}}}})
	}},
	{"REVERSING", metadata.StateReversing, func(t *testing.T, r *apiRig) {
		r.put(t, bson.D{{Key: "state", Value: metadata.StateReversing}, {Key: "phase", Value: metadata.PhaseApply}})
	}},
}

// TestEveryEndpointInEveryState drives each lifecycle call in each state through the HTTP API, and
// checks the status, the body and the state after: a legal call makes exactly its transition, an
// illegal one answers 4xx in mongosync's error shape and leaves the sync document byte for byte as
// it was.
func TestEveryEndpointInEveryState(t *testing.T) {
	t.Parallel()
	// legal[state][call] is the state after a legal call; absent means illegal (409) in that state.
	legal := map[string]map[string]string{
		"IDLE":                 {"start": metadata.StateRunning},
		"RUNNING copying":      {"pause": metadata.StatePaused},
		"RUNNING caught up":    {"pause": metadata.StatePaused, "commit": metadata.StateCommitting},
		"PAUSED":               {"resume": metadata.StateRunning},
		"COMMITTING":           {},
		"COMMITTED":            {},
		"COMMITTED reversible": {"reverse": metadata.StateReversing},
		"REVERSING":            {},
	}
	// Refusals that are not about the state: the call is allowed in the state but cannot be made.
	otherRefusal := map[string]string{
		"RUNNING copying/commit": "CommitNotAllowed",
		"COMMITTED/reverse":      "ReverseNotAllowed",
	}
	calls := []string{"start", "pause", "resume", "commit", "reverse"}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			for _, call := range calls {
				r := newAPIRig(t, true)
				st.setup(t, r)
				before := r.snapshot(t)

				code, p, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
				if code != http.StatusOK || !p.Success || p.Progress.State != st.state {
					t.Fatalf("progress in %s: %d %s", st.name, code, raw)
				}
				wantCommit := st.name == "RUNNING caught up"
				if p.Progress.CanCommit != wantCommit || p.Progress.CanWrite != (st.state == metadata.StateCommitted) {
					t.Errorf("progress in %s: canCommit %v canWrite %v", st.name, p.Progress.CanCommit, p.Progress.CanWrite)
				}

				body := "{ }"
				if call == "start" {
					body = `{"source": "cluster0", "destination": "cluster1"}`
				}
				code, got, raw := r.call(t, http.MethodPost, "/api/v1/"+call, body)
				after, legalCall := legal[st.name][call]
				switch {
				case legalCall:
					if code != http.StatusOK || raw != `{"success":true}`+"\n" {
						t.Errorf("%s in %s: %d %s, want 200 {\"success\":true}", call, st.name, code, raw)
					}
					if s, _ := r.n.meta.Sync(context.Background()); s.State != after {
						t.Errorf("%s in %s: state %s after, want %s", call, st.name, s.State, after)
					}
				default:
					wantErr := "InvalidStateTransition"
					if e, ok := otherRefusal[st.name+"/"+call]; ok {
						wantErr = e
					}
					if code != http.StatusConflict || got.Success || got.Error != wantErr || got.ErrorDescription == "" {
						t.Errorf("%s in %s: %d %s, want 409 with error %s", call, st.name, code, raw, wantErr)
					}
					if wantErr == "InvalidStateTransition" && !strings.Contains(got.ErrorDescription, "is "+st.state) {
						t.Errorf("%s in %s: the description %q does not name the state", call, st.name, got.ErrorDescription)
					}
					if afterDoc := r.snapshot(t); !bytes.Equal(before, afterDoc) {
						t.Errorf("%s in %s was refused but changed the sync:\n before %s\n after  %s", call, st.name, before, afterDoc)
					}
				}
			}
		})
	}
}

// TestMalformedCallsChangeNothing sends what a confused client might, and checks each gets one 4xx
// with a sentence and no change.
func TestMalformedCallsChangeNothing(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t, true)
	before := r.snapshot(t)
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string // in errorDescription
	}{
		{"POST", "/api/v1/start", `{"source": "cluster0"`, 400, "must be a JSON object"},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "namespaceRemap": []}`, 400, `parameter "namespaceRemap" is not supported`},
		{"POST", "/api/v1/start", `{"source": "cluster0"}`, 400, `both "source" and "destination" are required`},
		{"POST", "/api/v1/start", `{"source": "cluster1", "destination": "cluster0"}`, 400, `must be "cluster0" and "cluster1"`},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "buildIndexes": "sometimes"}`, 400, `buildIndexes must be "afterDataCopy"`},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "reversible": "yes"}`, 400, "parameter reversible must be a boolean"},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "reversible": true}`, 400, `needs "enableUserWriteBlocking": "sourceAndDestination"`},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": 3}`, 400, "enableUserWriteBlocking must be"},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "includeNamespaces": [{"collections": ["a"]}]}`, 400, `includeNamespaces[0]`},
		{"POST", "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "excludeNamespaces": [{"database": "a", "collectionsRegex": {"pattern": "(?<=x)"}}]}`, 400, "excludeNamespaces[0]"},
		{"POST", "/api/v1/pause", `{"force": true}`, 400, "takes no parameters"},
		{"POST", "/api/v1/commit", `[1]`, 400, "must be empty or {}"},
		{"GET", "/api/v1/pause", "", 405, "Method Not Allowed"},
		{"POST", "/api/v1/progress", "", 405, "Method Not Allowed"},
		{"GET", "/api/v1/nothing", "", 404, "Not Found"},
	} {
		code, got, raw := r.call(t, c.method, c.path, c.body)
		if code != c.code || got.Success || got.Error == "" || !strings.Contains(got.ErrorDescription, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", c.method, c.path, c.body, code, raw, c.code, c.want)
		}
		if strings.Count(got.ErrorDescription, "\n") > 0 {
			t.Errorf("%s %s: the description spans lines: %q", c.method, c.path, got.ErrorDescription)
		}
	}
	if after := r.snapshot(t); !bytes.Equal(before, after) {
		t.Fatalf("malformed calls changed the sync:\n before %s\n after  %s", before, after)
	}
}

// TestStartRefusesWhatTheClustersCannotDo checks the preflight refusals that the sandbox servers can
// show: a standalone server without --sandbox, write blocking and reversible on a 5.0 server, and a
// destination that already holds a namespace to sync.
func TestStartRefusesWhatTheClustersCannotDo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		sandbox bool
		body    string
		code    string
		want    string
	}{
		{"standalone without --sandbox", false, `{"source": "cluster0", "destination": "cluster1"}`, "UnsupportedTopology",
			"cluster0 is a standalone server; fleetsync needs replica sets"},
		{"write blocking on 5.0", true, `{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": "destinationOnly"}`,
			"WriteBlockingNotSupported", "needs setUserWriteBlockMode (MongoDB 6.0+) on both clusters, but cluster0 runs 5.0"},
		{"legacy write blocking true on 5.0", true, `{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": true}`,
			"WriteBlockingNotSupported", `enableUserWriteBlocking "sourceAndDestination" needs setUserWriteBlockMode`},
		{"reversible on 5.0", true, `{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "sourceAndDestination"}`,
			"ReverseNotSupported", "reversible: true needs user write blocking"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newAPIRig(t, c.sandbox)
			before := r.snapshot(t)
			code, got, raw := r.call(t, http.MethodPost, "/api/v1/start", c.body)
			if code != http.StatusBadRequest || got.Error != c.code || !strings.Contains(got.ErrorDescription, c.want) {
				t.Fatalf("%d %s, want 400 %s with %q", code, raw, c.code, c.want)
			}
			if after := r.snapshot(t); !bytes.Equal(before, after) {
				t.Fatalf("a refused start changed the sync:\n before %s\n after  %s", before, after)
			}
		})
	}

	t.Run("destination not empty", func(t *testing.T) {
		t.Parallel()
		r := newAPIRig(t, true)
		ctx := context.Background()
		for _, ns := range []string{"shop.orders", "crm.people"} {
			db, coll, _ := strings.Cut(ns, ".")
			if _, err := r.n.source.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.n.destination.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 9}}); err != nil {
			t.Fatal(err)
		}
		code, got, raw := r.call(t, http.MethodPost, "/api/v1/start", `{"source": "cluster0", "destination": "cluster1"}`)
		if code != 400 || got.Error != "DestinationNotEmpty" || !strings.Contains(got.ErrorDescription, "already has 1 of the namespaces to sync (shop.orders)") {
			t.Fatalf("%d %s", code, raw)
		}
		// Excluding the namespace, or accepting pre-existing data, lets the sync start.
		code, _, raw = r.call(t, http.MethodPost, "/api/v1/start", `{"source": "cluster0", "destination": "cluster1", "excludeNamespaces": [{"database": "shop"}]}`)
		if code != 200 {
			t.Fatalf("start excluding shop: %d %s", code, raw)
		}
		s, _ := r.n.meta.Sync(ctx)
		if len(s.Options.Exclude) != 1 || s.Options.Exclude[0].Database != "shop" || s.Options.WriteBlocking != metadata.WriteBlockingNone ||
			s.Options.BuildIndexes != metadata.BuildIndexesAfterCopy || !s.Options.Verification {
			t.Fatalf("stored options %+v: want the exclude rule, write blocking none (5.0 has none), afterDataCopy, verification on", s.Options)
		}
	})
}

// TestInitializingNodeAnswersProgressOnly checks what a node says while it connects.
func TestInitializingNodeAnswersProgressOnly(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(web.New(initializing{}, zap.NewNop()))
	defer srv.Close()
	r := &apiRig{srv: srv}
	code, p, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
	if code != 200 || p.Progress.State != metadata.StateInitializing {
		t.Fatalf("progress: %d %s", code, raw)
	}
	for _, call := range []string{"start", "pause", "resume", "commit", "reverse"} {
		code, got, raw := r.call(t, http.MethodPost, "/api/v1/"+call, `{"source": "cluster0", "destination": "cluster1"}`)
		if call != "start" {
			code, got, raw = r.call(t, http.MethodPost, "/api/v1/"+call, "")
		}
		if code != http.StatusServiceUnavailable || got.Error != "NotReady" {
			t.Errorf("%s while initializing: %d %s, want 503 NotReady", call, code, raw)
		}
	}
}

// TestHalfClosedClientGetsTheTruthfulAnswer sends a lifecycle call the way some clients do: the
// whole request, then shutdown(SHUT_WR) on the connection, then it waits for the answer. net/http
// reads that EOF and cancels the request's context, so a call acting on it would fail part way with
// a 500 while its change might still have been made. The client must get what really happened.
func TestHalfClosedClientGetsTheTruthfulAnswer(t *testing.T) {
	t.Parallel()
	running := setupFor(t, "RUNNING copying")

	t.Run("a legal pause pauses and says so", func(t *testing.T) {
		t.Parallel()
		r := newAPIRig(t, true)
		running(t, r)
		code, raw := r.halfClosedCall(t, http.MethodPost, "/api/v1/pause", "{ }")
		if code != http.StatusOK || raw != `{"success":true}`+"\n" {
			t.Errorf("pause from a half-closed client: %d %s, want 200 {\"success\":true}", code, raw)
		}
		if s, err := r.n.meta.Sync(context.Background()); err != nil || s.State != metadata.StatePaused {
			t.Errorf("after the pause the stored state is %s (%v), want %s", s.State, err, metadata.StatePaused)
		}
	})

	t.Run("an illegal resume is refused and changes nothing", func(t *testing.T) {
		t.Parallel()
		r := newAPIRig(t, true)
		running(t, r)
		before := r.snapshot(t)
		code, raw := r.halfClosedCall(t, http.MethodPost, "/api/v1/resume", "{ }")
		var got reply
		if err := json.Unmarshal([]byte(raw), &got); err != nil || code != http.StatusConflict || got.Success ||
			got.Error != "InvalidStateTransition" || !strings.Contains(got.ErrorDescription, "is "+metadata.StateRunning) {
			t.Errorf("resume while RUNNING from a half-closed client: %d %s, want 409 InvalidStateTransition naming RUNNING", code, raw)
		}
		if after := r.snapshot(t); !bytes.Equal(before, after) {
			t.Errorf("a refused resume changed the sync:\n before %s\n after  %s", before, after)
		}
	})
}

// setupFor is the setup of the named entry of states.
func setupFor(t *testing.T, name string) func(t *testing.T, r *apiRig) {
	t.Helper()
	for _, st := range states {
		if st.name == name {
			return st.setup
		}
	}
	t.Fatalf("no state %q in states", name)
	return nil
}

// halfClosedCall writes one HTTP/1.1 request on a fresh TCP connection, half-closes it
// (shutdown(SHUT_WR), as the client in issue 11 does), and reads the answer.
func (r *apiRig) halfClosedCall(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(halfClosedCallTimeout)); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, r.srv.Listener.Addr(), len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s from a half-closed client: no answer: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// halfClosedCallTimeout bounds a half-closed call, so that a server that never answers fails the
// test instead of hanging it.
const halfClosedCallTimeout = 30 * time.Second
