// Package web serves fleetsync's HTTP API: mongosync's /api/v1 endpoints, with mongosync's request
// and response shapes so that existing runbooks and curl commands work, plus fleet extensions. Every
// node with a port serves it, and every node acts on the shared state in the metadata database, so it
// does not matter which node a call reaches.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// DefaultPort is mongosync's API port.
const DefaultPort = 27182

// shutdownTimeout bounds how long a stopping node waits for API calls in flight.
const shutdownTimeout = 5 * time.Second

// maxBodyBytes bounds request bodies; /start's is a few hundred bytes.
const maxBodyBytes = 1 << 20

// stateChangeTimeout bounds every API call (a state change above all: start, pause, resume, commit,
// reverse), which runs on a context of its own rather than the client's (see detached). It leaves room for /start's
// preflight against slow clusters, and stays under clientTimeout so that fleetsync's own client
// always hears how the call ended.
const stateChangeTimeout = 20 * time.Second

// StartRequest is the body of POST /api/v1/start: mongosync's parameters. Any other parameter is
// refused by name rather than ignored.
type StartRequest struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// IncludeNamespaces and ExcludeNamespaces are mongosync's namespace filters.
	IncludeNamespaces []namespace.Rule `json:"includeNamespaces,omitempty"`
	ExcludeNamespaces []namespace.Rule `json:"excludeNamespaces,omitempty"`
	// BuildIndexes is "afterDataCopy" (default), "beforeDataCopy" or "never".
	BuildIndexes string `json:"buildIndexes,omitempty"`
	Reversible   bool   `json:"reversible,omitempty"`
	// EnableUserWriteBlocking is mongosync's string ("none", "destinationOnly",
	// "sourceAndDestination") or legacy boolean (false, true); "" when not given.
	EnableUserWriteBlocking WriteBlocking `json:"enableUserWriteBlocking,omitempty"`
	Verification            *struct {
		Enabled *bool `json:"enabled,omitempty"`
	} `json:"verification,omitempty"`
	PreExistingDestinationData bool `json:"preExistingDestinationData,omitempty"`
}

// WriteBlocking is enableUserWriteBlocking, normalised to mongosync's string values: the legacy
// true is "sourceAndDestination" and false is "none".
type WriteBlocking string

// UnmarshalJSON accepts the string values and the legacy booleans.
func (w *WriteBlocking) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*w = metadata.WriteBlockingNone
		if v {
			*w = metadata.WriteBlockingBoth
		}
	case string:
		*w = WriteBlocking(v)
	default:
		return fmt.Errorf("enableUserWriteBlocking must be \"none\", \"destinationOnly\", \"sourceAndDestination\", true or false, not %s", b)
	}
	return nil
}

// VerificationEnabled is verification.enabled, true unless the request turns it off (mongosync's
// default).
func (r StartRequest) VerificationEnabled() bool {
	return r.Verification == nil || r.Verification.Enabled == nil || *r.Verification.Enabled
}

// Validate checks the parameters and their combinations, as far as they can be judged without the
// clusters; the node checks the rest (versions, write blocking support) before it starts the sync.
// A problem is a 400 *Error naming the parameter and what to do.
func (r StartRequest) Validate() error {
	bad := func(format string, args ...any) error { return BadRequest("InvalidRequest", format, args...) }
	if r.Source == "" || r.Destination == "" {
		return bad("both \"source\" and \"destination\" are required, e.g. {\"source\": \"cluster0\", \"destination\": \"cluster1\"}")
	}
	switch r.BuildIndexes {
	case "", metadata.BuildIndexesAfterCopy, metadata.BuildIndexesBeforeCopy, metadata.BuildIndexesNever:
	case "excludeHashedAfterCopy", "excludeHashed":
		return bad("buildIndexes %q is not supported by fleetsync; use \"afterDataCopy\", \"beforeDataCopy\" or \"never\"", r.BuildIndexes)
	default:
		return bad("buildIndexes must be \"afterDataCopy\" (the default), \"beforeDataCopy\" or \"never\", not %q", r.BuildIndexes)
	}
	switch r.EnableUserWriteBlocking {
	case "", metadata.WriteBlockingNone, metadata.WriteBlockingDestinationOnly, metadata.WriteBlockingBoth:
	default:
		return bad("enableUserWriteBlocking must be \"none\", \"destinationOnly\", \"sourceAndDestination\", true or false, not %q", string(r.EnableUserWriteBlocking))
	}
	if err := namespace.ValidateRules("includeNamespaces", r.IncludeNamespaces); err != nil {
		return bad("%v", err)
	}
	if err := namespace.ValidateRules("excludeNamespaces", r.ExcludeNamespaces); err != nil {
		return bad("%v", err)
	}
	if r.Reversible {
		switch {
		case r.EnableUserWriteBlocking != metadata.WriteBlockingBoth:
			return bad("reversible: true needs \"enableUserWriteBlocking\": \"sourceAndDestination\" (or true), so that nothing writes to the clusters while the direction changes")
		case r.BuildIndexes == metadata.BuildIndexesNever:
			return bad("reversible: true cannot be combined with buildIndexes \"never\": a reverse needs the destination's indexes")
		case len(r.IncludeNamespaces) > 0 || len(r.ExcludeNamespaces) > 0:
			return bad("reversible: true cannot be combined with includeNamespaces or excludeNamespaces: a reverse syncs whole clusters")
		case r.PreExistingDestinationData:
			return bad("reversible: true cannot be combined with preExistingDestinationData: a reverse would copy the destination's other data back to the source")
		}
	}
	return nil
}

// Progress is the body of GET /api/v1/progress under "progress": mongosync's fields, then "fleet".
type Progress struct {
	State              string `json:"state"`
	CanCommit          bool   `json:"canCommit"`
	CanWrite           bool   `json:"canWrite"`
	Info               string `json:"info"`
	LagTimeSeconds     *int64 `json:"lagTimeSeconds"`
	Lag                *Lag   `json:"lag"`
	TotalEventsApplied *int64 `json:"totalEventsApplied"`
	// EstimatedSecondsToCEACatchup is null while unknown (no measured catch-up rate yet, or the
	// applier is not catching up).
	EstimatedSecondsToCEACatchup *int64 `json:"estimatedSecondsToCEACatchup"`
	// EstimatedOplogTimeRemaining is mongosync's (1.19+) string: the time between the oldest
	// entry of the source's oplog and the oldest entry the sync still needs from it, as "4 hours",
	// "45 minutes", "more than 72 hours", "less than 15 minutes", or "not checked yet" while the
	// oldest entry is unknown. Only while RUNNING, as mongosync reports it; absent otherwise.
	EstimatedOplogTimeRemaining string           `json:"estimatedOplogTimeRemaining,omitempty"`
	CollectionCopy              CollectionCopy   `json:"collectionCopy"`
	DirectionMapping            DirectionMapping `json:"directionMapping"`
	MongosyncID                 string           `json:"mongosyncID"`
	CoordinatorID               string           `json:"coordinatorID"`
	Source                      Ping             `json:"source"`
	Destination                 Ping             `json:"destination"`
	// Verification is null while the embedded verifier is off.
	Verification *Verification `json:"verification"`
	Warnings     []string      `json:"warnings"`
	Fleet        Fleet         `json:"fleet"`
}

// Ping is how long a ping to a cluster took from the answering node; -1 when it failed.
type Ping struct {
	PingLatencyMs int64 `json:"pingLatencyMs"`
}

// Verification is mongosync's verification object. fleetsync's verifier compares source and
// destination once, during commit, after the last event is applied and before canWrite; each side
// reports what that comparison read.
type Verification struct {
	Source      VerificationSide `json:"source"`
	Destination VerificationSide `json:"destination"`
	// Result is fleetsync's: "passed" or "failed" once the comparison is done, and the differences.
	Result      string   `json:"result,omitempty"`
	Differences []string `json:"differences,omitempty"`
}

// VerificationSide is one cluster's side of the verification, mongosync's fields.
type VerificationSide struct {
	EstimatedDocumentCount int64 `json:"estimatedDocumentCount"`
	HashedDocumentCount    int64 `json:"hashedDocumentCount"`
	LagTimeSeconds         int64 `json:"lagTimeSeconds"`
	TotalCollectionCount   int   `json:"totalCollectionCount"`
	ScannedCollectionCount int   `json:"scannedCollectionCount"`
	// Phase is "not started" until commit, then "in progress", then "passed" or "failed".
	Phase string `json:"phase"`
}

// Lag is mongosync's lag object: how far the destination is behind the source, in seconds of
// source time. fleetsync applies CRUD and DDL events from one ordered stream, so the three agree.
type Lag struct {
	OverallLagSeconds int64 `json:"overallLagSeconds"`
	CRUDLagSeconds    int64 `json:"crudLagSeconds"`
	DDLLagSeconds     int64 `json:"ddlLagSeconds"`
}

// CollectionCopy is mongosync's estimate of the initial copy, in bytes. fleetsync's copied figure
// covers the whole fleet, not only the node answering, since the fleet shares its progress.
type CollectionCopy struct {
	EstimatedTotalBytes  int64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes int64 `json:"estimatedCopiedBytes"`
}

// DirectionMapping names the clusters, mongosync's way ("cluster0: host:port").
type DirectionMapping struct {
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
}

// Fleet is fleetsync's extension: the nodes and how the work is shared.
type Fleet struct {
	SyncID               string         `json:"syncId"`
	Phase                string         `json:"phase"`
	Node                 string         `json:"node"` // the node that answered
	Coordinator          *LeaseHolder   `json:"coordinator"`
	NodesAlive           int            `json:"nodesAlive"`
	Nodes                []Node         `json:"nodes"`
	Partitions           PartitionCount `json:"partitions"`
	DocumentsCopied      int64          `json:"documentsCopied"`
	EstimatedTotalDocs   int64          `json:"estimatedTotalDocuments"`
	StartAtOperationTime *OpTime        `json:"startAtOperationTime,omitempty"`
	Applier              *Applier       `json:"applier,omitempty"`
	// Spool is the capture of the source's change events into the destination, once it has run.
	Spool  *Spool  `json:"spool,omitempty"`
	Commit *Commit `json:"commit,omitempty"`
	// Reversed is true once /reverse turned the sync around (cluster1 to cluster0).
	Reversed bool   `json:"reversed,omitempty"`
	Error    string `json:"error,omitempty"`
	// FailedPartitions are (the first few of) the partitions given up on, with why: the copy
	// cannot finish until POST /api/v1/fleet/partitions/retry makes them claimable again.
	FailedPartitions []FailedPartition `json:"failedPartitions,omitempty"`
}

// FailedPartition is a partition that failed too often in a row to be claimed again by itself.
type FailedPartition struct {
	ID              string `json:"id"`
	Namespace       string `json:"namespace"`
	Range           string `json:"range"`
	Attempts        int    `json:"attempts"`
	DocumentsCopied int64  `json:"documentsCopied"`
	LastError       string `json:"lastError"`
}

// Commit is the cut-over as the fleet carries it out.
type Commit struct {
	Step        string    `json:"step"` // block, catchUp, restore, verify, unblock, finished, failed
	RequestedAt time.Time `json:"requestedAt"`
	Point       *OpTime   `json:"commitPoint,omitempty"`
	// SourceBlocked says user writes to the source are blocked (enableUserWriteBlocking
	// "sourceAndDestination").
	SourceBlocked bool `json:"sourceBlocked"`
	// Restored lists the index settings commit put back on the destination.
	Restored    []string   `json:"restoredIndexSettings,omitempty"`
	CommittedAt *time.Time `json:"committedAt,omitempty"`
	// PauseSeconds is from the /commit call to COMMITTED (or until now while committing).
	PauseSeconds float64 `json:"pauseSeconds"`
	Failure      string  `json:"failure,omitempty"`
}

// Applier is the change-event applier: who holds its lease, where events come from, and how far
// it has got.
type Applier struct {
	Node           string    `json:"node,omitempty"` // "" while no node holds the lease
	Epoch          int64     `json:"epoch"`
	Source         string    `json:"source"`                   // "changeStream" or "oplog"
	AppliedThrough *OpTime   `json:"appliedThrough,omitempty"` // every source event up to here is applied
	SourceLatest   *OpTime   `json:"sourceLatest,omitempty"`
	EventsApplied  int64     `json:"eventsApplied"`
	CRUDApplied    int64     `json:"crudEventsApplied"`
	DDLApplied     int64     `json:"ddlEventsApplied"`
	Refreshed      int64     `json:"refreshedDocuments"` // updates applied by re-reading the document
	CatchupRate    float64   `json:"catchupRate,omitempty"`
	CheckpointAt   time.Time `json:"checkpointAt,omitempty"`
	Error          string    `json:"error,omitempty"`
	// Failed says the applier stopped for good on Error (the source's oplog no longer holds its
	// resume point, a collection was renamed into the sync): the sync must be started again.
	Failed bool `json:"failed,omitempty"`
}

// Spool is the capture and its spool (docs/lifecycle.md): one node reads the source's change
// events from the sync's start and keeps them in the metadata database until the applier, which
// reads them from there until it switches to the live source, has applied them.
type Spool struct {
	// Capturer holds the capture lease; null while no node does.
	Capturer *LeaseHolder `json:"capturer"`
	// Captured counts the events the capture put in the spool, Bytes their size; Applied counts the
	// ones the applier applied from it, and Waiting the ones still to apply (never below 0; 0 once
	// the capture is done, as the applier reads the rest from the source).
	Captured int64 `json:"eventsCaptured"`
	Applied  int64 `json:"eventsApplied"`
	Waiting  int64 `json:"eventsWaiting"`
	Bytes    int64 `json:"bytesCaptured"`
	// LagSeconds is how far behind the source the capture was at its last checkpoint.
	LagSeconds float64 `json:"captureLagSeconds"`
	// Done says the applier reads the live source: the capture is over.
	Done  bool   `json:"done"`
	Error string `json:"error,omitempty"`
}

// LeaseHolder is the node holding a fleet-wide lease, and the lease's epoch.
type LeaseHolder struct {
	Node  string `json:"node"`
	Epoch int64  `json:"epoch"`
}

// Node is one member of the fleet.
type Node struct {
	Name       string `json:"name"`
	Alive      bool   `json:"alive"`      // gossip sees it alive
	Registered bool   `json:"registered"` // its registry lease is live
	API        string `json:"api,omitempty"`
}

// PartitionCount counts partitions by state.
type PartitionCount struct {
	Total  int `json:"total"`
	Done   int `json:"done"`
	Active int `json:"active"`
	Failed int `json:"failed"`
}

// OpTime is an oplog timestamp.
type OpTime struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// Less orders optimes.
func (o OpTime) Less(p OpTime) bool { return o.T < p.T || (o.T == p.T && o.I < p.I) }

// Service is what the API acts on: a node's view of the shared sync. A refusal the caller can fix
// is an *Error; the lifecycle calls change nothing when they refuse.
type Service interface {
	Start(ctx context.Context, req StartRequest) error
	Progress(ctx context.Context) (Progress, error)
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Commit(ctx context.Context) error
	Reverse(ctx context.Context) error
	// RetryPartitions makes the partitions given up on claimable again and says how many there were.
	RetryPartitions(ctx context.Context) (int64, error)
}

// Error is a refused call: its HTTP status, mongosync-style error code, and a sentence for the user.
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// BadRequest returns a 400 *Error.
func BadRequest(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: fmt.Sprintf(format, args...)}
}

// Conflict returns a 409 *Error: the call is not allowed in the sync's current state.
func Conflict(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Description: fmt.Sprintf(format, args...)}
}

// Unavailable returns a 503 *Error: the node cannot act yet (it is still connecting).
func Unavailable(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: code, Description: fmt.Sprintf(format, args...)}
}

// errorBody is mongosync's error response.
type errorBody struct {
	Success          bool   `json:"success"`
	Error            string `json:"error"`
	ErrorDescription string `json:"errorDescription"`
}

// New returns the API's handler.
func New(svc Service, log *zap.Logger) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) { writeError(c, err, log) }
	api := e.Group("/api/v1")
	api.POST("/start", func(c echo.Context) error {
		req, err := decodeStart(c.Request())
		if err != nil {
			return err
		}
		return change(c, "start", func(ctx context.Context) error { return svc.Start(ctx, req) })
	})
	for path, call := range map[string]func(context.Context) error{
		"/pause": svc.Pause, "/resume": svc.Resume, "/commit": svc.Commit, "/reverse": svc.Reverse,
	} {
		api.POST(path, func(c echo.Context) error {
			if err := decodeEmpty(c.Request(), path); err != nil {
				return err
			}
			return change(c, strings.TrimPrefix(path, "/"), call)
		})
	}
	api.GET("/progress", func(c echo.Context) error {
		// Detached like a change, so that a client that half-closes after its request (nc -N,
		// some proxies) still gets the progress.
		ctx, cancel := detached(c.Request())
		defer cancel()
		p, err := svc.Progress(ctx)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct {
			Success  bool     `json:"success"`
			Progress Progress `json:"progress"`
		}{true, p})
	})
	api.POST("/fleet/partitions/retry", func(c echo.Context) error {
		if err := decodeEmpty(c.Request(), "/fleet/partitions/retry"); err != nil {
			return err
		}
		ctx, cancel := detached(c.Request())
		defer cancel()
		n, err := svc.RetryPartitions(ctx)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct {
			Success           bool  `json:"success"`
			PartitionsRetried int64 `json:"partitionsRetried"`
		}{true, n})
	})
	api.GET("/fleet", func(c echo.Context) error {
		ctx, cancel := detached(c.Request())
		defer cancel()
		p, err := svc.Progress(ctx)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct {
			Success bool  `json:"success"`
			Fleet   Fleet `json:"fleet"`
		}{true, p.Fleet})
	})
	return e
}

// change runs a state-changing call to its end on a detached context and answers how it ended:
// {"success": true} when the change was made, the refusal when it was not.
func change(c echo.Context, name string, call func(context.Context) error) error {
	ctx, cancel := detached(c.Request())
	defer cancel()
	err := call(ctx)
	var apiErr *Error
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, map[string]bool{"success": true})
	case errors.As(err, &apiErr):
		return err
	case ctx.Err() != nil:
		// Cut off mid-call, the change may or may not have been made; say so rather than guess.
		return Unavailable("Timeout", "%s did not finish within %v because the clusters answered too slowly, so it may or may not have taken effect; check GET /api/v1/progress before calling it again",
			name, stateChangeTimeout)
	}
	return err
}

// detached is the context a call runs on: the request's values without its cancellation,
// bounded by stateChangeTimeout. net/http cancels a request's context as soon as it reads EOF from
// the client, and a client that half-closes its connection after sending (shutdown(SHUT_WR)) gives
// that EOF while still waiting for the answer. A change cancelled between sending its update and
// reading the reply may have been made while the answer says it failed.
func detached(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), stateChangeTimeout)
}

// decodeStart reads /start's body strictly: a malformed body, a parameter fleetsync does not know,
// or an invalid value or combination is refused with a sentence saying which.
func decodeStart(r *http.Request) (StartRequest, error) {
	var req StartRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, BadRequest("InvalidRequest", "parameter %s is not supported by this version of fleetsync; remove it", name)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return req, BadRequest("InvalidRequest", "parameter %s must be a %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return req, BadRequest("InvalidRequest", "the request body must be a JSON object like {\"source\": \"cluster0\", \"destination\": \"cluster1\"} (%v)", err)
	}
	if dec.More() {
		return req, BadRequest("InvalidRequest", "the request body must be one JSON object; remove what follows it")
	}
	return req, req.Validate()
}

// jsonKind names a Go kind the way a JSON user knows it.
func jsonKind(kind string) string {
	switch kind {
	case "slice", "array":
		return "list"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean (true or false)"
	}
	return kind
}

// decodeEmpty accepts the bodies mongosync's other calls take: nothing, or an empty object ("{ }" in
// mongosync's curl examples). Anything else is refused, so that a parameter meant for /start is not
// silently ignored.
func decodeEmpty(r *http.Request, path string) error {
	var body map[string]json.RawMessage
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return BadRequest("InvalidRequest", "reading the request body: %v", err)
	}
	if strings.TrimSpace(string(raw)) == "" {
		return nil
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return BadRequest("InvalidRequest", "the body of %s must be empty or {} (%v)", path, err)
	}
	for name := range body {
		return BadRequest("InvalidRequest", "%s takes no parameters, but got %q; send {} or no body", path, name)
	}
	return nil
}

func writeError(c echo.Context, err error, log *zap.Logger) {
	if c.Response().Committed {
		return
	}
	body := errorBody{Error: "InternalError", ErrorDescription: err.Error()}
	status := http.StatusInternalServerError
	var apiErr *Error
	var httpErr *echo.HTTPError
	switch {
	case errors.As(err, &apiErr):
		status, body.Error, body.ErrorDescription = apiErr.Status, apiErr.Code, apiErr.Description
	case errors.As(err, &httpErr):
		status = httpErr.Code
		body.Error = strings.ReplaceAll(http.StatusText(status), " ", "")
		body.ErrorDescription = fmt.Sprintf("%s %s: %v", c.Request().Method, c.Request().URL.Path, httpErr.Message)
	default:
		log.Error("API call failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
	}
	_ = c.JSON(status, body)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
