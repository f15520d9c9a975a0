package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetsync/fleetsync/internal/metadata"
)

// /start's body as mongosync's documentation writes it, in its current and legacy forms.
func TestDecodeStartNormalisesMongosyncsForms(t *testing.T) {
	for _, c := range []struct {
		body         string
		blocking     string
		verification bool
	}{
		{`{"source": "cluster0", "destination": "cluster1"}`, "", true},
		{`{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": true}`, metadata.WriteBlockingBoth, true},
		{`{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": false}`, metadata.WriteBlockingNone, true},
		{`{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": "destinationOnly"}`, metadata.WriteBlockingDestinationOnly, true},
		{`{"source": "cluster0", "destination": "cluster1", "verification": {"enabled": false}}`, "", false},
		{`{"source": "cluster0", "destination": "cluster1", "verification": {}}`, "", true},
		{`{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "sourceAndDestination"}`, metadata.WriteBlockingBoth, true},
	} {
		req, err := decodeStart(httptest.NewRequest("POST", "/api/v1/start", strings.NewReader(c.body)))
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if string(req.EnableUserWriteBlocking) != c.blocking || req.VerificationEnabled() != c.verification {
			t.Errorf("%s: blocking %q verification %v", c.body, req.EnableUserWriteBlocking, req.VerificationEnabled())
		}
	}
}

// Each invalid combination has its own sentence.
func TestValidateRefusesInvalidCombinations(t *testing.T) {
	for body, want := range map[string]string{
		`{"source": "cluster0", "destination": "cluster1", "buildIndexes": "excludeHashedAfterCopy"}`:                                                                  `buildIndexes "excludeHashedAfterCopy" is not supported by fleetsync`,
		`{"source": "cluster0", "destination": "cluster1", "enableUserWriteBlocking": "both"}`:                                                                         `enableUserWriteBlocking must be`,
		`{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "destinationOnly"}`:                                          `reversible: true needs "enableUserWriteBlocking": "sourceAndDestination"`,
		`{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": true, "buildIndexes": "never"}`:                              `cannot be combined with buildIndexes "never"`,
		`{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": true, "includeNamespaces": [{"database": "a"}]}`:             `cannot be combined with includeNamespaces or excludeNamespaces`,
		`{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "sourceAndDestination", "preExistingDestinationData": true}`: `cannot be combined with preExistingDestinationData`,
		`{"source": "cluster0", "destination": "cluster1", "includeNamespaces": [{"database": "a", "databaseRegex": {"pattern": "b"}}]}`:                               `includeNamespaces[0]: give either "database" or "databaseRegex", not both`,
		`{"source": "cluster0", "destination": "cluster1"} {"again": 1}`:                                                                                               `one JSON object`,
	} {
		_, err := decodeStart(httptest.NewRequest("POST", "/api/v1/start", strings.NewReader(body)))
		apiErr, ok := err.(*Error)
		if !ok || apiErr.Status != 400 || !strings.Contains(apiErr.Description, want) {
			t.Errorf("%s: %v, want a 400 saying %q", body, err, want)
		}
	}
}

// A client that half-closes its connection after sending GET /progress (shutdown(SHUT_WR), as
// nc -N does) still gets the progress: net/http cancels the request's context on that EOF, and the
// read must not run on it.
func TestProgressToAHalfClosedClientIsAnswered(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.WarnLevel)
	srv := httptest.NewServer(New(slowProgress{}, zap.New(core)))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET /api/v1/progress HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", srv.Listener.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Success  bool     `json:"success"`
		Progress Progress `json:"progress"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !got.Success || got.Progress.State != "RUNNING" {
		t.Errorf("progress to a half-closed client: %d %+v, want 200 with the progress", resp.StatusCode, got)
	}
	for _, e := range logs.All() {
		t.Errorf("logged %s %q %v", e.Level, e.Message, e.ContextMap())
	}
}

// slowProgress answers /progress after a moment (long enough for net/http to see a half-closed
// client's EOF), failing as a metadata read does if its context was cancelled meanwhile.
type slowProgress struct{ Service }

func (slowProgress) Progress(ctx context.Context) (Progress, error) {
	select {
	case <-ctx.Done():
		return Progress{}, fmt.Errorf("reading the sync: %w", ctx.Err())
	case <-time.After(300 * time.Millisecond):
		return Progress{State: "RUNNING"}, nil
	}
}
