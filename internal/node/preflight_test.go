package node

import (
	"net/http"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// TestStartWarnsWhenPrivilegesCannotBeChecked starts a sync on the sandbox, whose servers run
// without access control: connectionStatus names no authenticated user, so the privilege check
// cannot be made. /start must still succeed, and /progress must say, for the life of the sync, that
// cluster1's privileges were not checked and what its user would need. cluster0 needs nothing
// checkable here (no write blocking on 5.0, not reversible), so it gets no warning.
func TestStartWarnsWhenPrivilegesCannotBeChecked(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t, true)
	code, _, raw := r.call(t, http.MethodPost, "/api/v1/start", `{"source": "cluster0", "destination": "cluster1"}`)
	if code != http.StatusOK {
		t.Fatalf("start on the sandbox: %d %s", code, raw)
	}
	warnings := func() []string {
		t.Helper()
		code, p, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
		if code != http.StatusOK {
			t.Fatalf("progress: %d %s", code, raw)
		}
		return p.Progress.Warnings
	}
	const want = "cluster1's privileges were not checked"
	var found []string
	for _, w := range warnings() {
		if strings.Contains(w, "privileges were not checked") {
			found = append(found, w)
		}
	}
	if len(found) != 1 || !strings.HasPrefix(found[0], want) ||
		!strings.Contains(found[0], "no authenticated user") || !strings.Contains(found[0], "bypassDocumentValidation on every database") {
		t.Fatalf("progress warnings %q: want exactly one saying %q, why, and what its user needs", found, want)
	}

	// The catalog step replaces the sync's own warnings (time series collections left out); the
	// preflight's must survive it.
	r.put(t, bson.D{{Key: "warnings", Value: []string{"time series collection shop.ticks is not copied"}}})
	got := warnings()
	if len(got) != 2 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[1], "shop.ticks") {
		t.Fatalf("progress warnings after the catalog step: %q", got)
	}
}
