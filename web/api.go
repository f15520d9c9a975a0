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
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// DefaultPort is mongosync's API port.
const DefaultPort = 27182

// shutdownTimeout bounds how long a stopping node waits for API calls in flight.
const shutdownTimeout = 5 * time.Second

// maxBodyBytes bounds request bodies; /start's is a few hundred bytes.
const maxBodyBytes = 1 << 20

// StartRequest is the body of POST /api/v1/start. Only mongosync's parameters this version supports
// are accepted; any other is refused by name rather than ignored.
type StartRequest struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
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
	EstimatedSecondsToCEACatchup *int64           `json:"estimatedSecondsToCEACatchup"`
	CollectionCopy               CollectionCopy   `json:"collectionCopy"`
	DirectionMapping             DirectionMapping `json:"directionMapping"`
	MongosyncID                  string           `json:"mongosyncID"`
	CoordinatorID                string           `json:"coordinatorID"`
	Warnings                     []string         `json:"warnings"`
	Fleet                        Fleet            `json:"fleet"`
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
	Error                string         `json:"error,omitempty"`
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

// Service is what the API acts on: a node's view of the shared sync.
type Service interface {
	// Start starts the sync. A refusal the caller can fix is an *Error.
	Start(ctx context.Context, req StartRequest) error
	Progress(ctx context.Context) (Progress, error)
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
		if err := svc.Start(c.Request().Context(), req); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]bool{"success": true})
	})
	api.GET("/progress", func(c echo.Context) error {
		p, err := svc.Progress(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, struct {
			Success  bool     `json:"success"`
			Progress Progress `json:"progress"`
		}{true, p})
	})
	api.GET("/fleet", func(c echo.Context) error {
		p, err := svc.Progress(c.Request().Context())
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

// decodeStart reads /start's body strictly: a malformed body, a parameter this version does not
// support, or a missing source/destination is refused with a sentence saying which.
func decodeStart(r *http.Request) (StartRequest, error) {
	var req StartRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, BadRequest("InvalidRequest", "parameter %s is not supported by this version of fleetsync; remove it", name)
		}
		return req, BadRequest("InvalidRequest", "the request body must be a JSON object like {\"source\": \"cluster0\", \"destination\": \"cluster1\"} (%v)", err)
	}
	if req.Source == "" || req.Destination == "" {
		return req, BadRequest("InvalidRequest", "both \"source\" and \"destination\" are required, e.g. {\"source\": \"cluster0\", \"destination\": \"cluster1\"}")
	}
	return req, nil
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
