package web

import (
	"net/http/httptest"
	"strings"
	"testing"

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
