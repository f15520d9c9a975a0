package metadata

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Options are /start's parameters as the sync keeps them. They are written once, by the transition
// out of IDLE, so every node (and every node started later) runs the sync the same way.
type Options struct {
	Include []namespace.Rule `bson:"includeNamespaces,omitempty"`
	Exclude []namespace.Rule `bson:"excludeNamespaces,omitempty"`
	// BuildIndexes is BuildIndexesAfterCopy, BuildIndexesBeforeCopy or BuildIndexesNever.
	BuildIndexes string `bson:"buildIndexes"`
	Reversible   bool   `bson:"reversible"`
	// WriteBlocking is WriteBlockingNone, WriteBlockingDestinationOnly or WriteBlockingBoth.
	WriteBlocking string `bson:"writeBlocking"`
	// Verification runs the verifier at commit, before canWrite.
	Verification               bool `bson:"verification"`
	PreExistingDestinationData bool `bson:"preExistingDestinationData"`
	// PreflightWarnings are the checks /start could not make (privileges on a server without access
	// control, say), for /progress to show for the life of the sync. They live here rather than in
	// Sync.Warnings, which the catalog step replaces with its own.
	PreflightWarnings []string `bson:"preflightWarnings,omitempty"`
}

// Values of Options.BuildIndexes, mongosync's names.
const (
	BuildIndexesAfterCopy  = "afterDataCopy"
	BuildIndexesBeforeCopy = "beforeDataCopy"
	BuildIndexesNever      = "never"
)

// Values of Options.WriteBlocking, mongosync's names.
const (
	WriteBlockingNone            = "none"
	WriteBlockingDestinationOnly = "destinationOnly"
	WriteBlockingBoth            = "sourceAndDestination"
)

// Filter is the sync's namespace filter.
func (o Options) Filter(metadataDB string) namespace.Filter {
	return namespace.Filter{MetadataDB: metadataDB, Include: o.Include, Exclude: o.Exclude}
}

// BlocksSource reports whether commit blocks writes on the source.
func (o Options) BlocksSource() bool { return o.WriteBlocking == WriteBlockingBoth }

// Commit records the cut-over. The coordinator moves it through its steps under its lease; a new
// coordinator continues from the step recorded, since every step can be redone.
type Commit struct {
	RequestedAt time.Time `bson:"requestedAt"`
	// Step is the commit's current step (CommitStep*).
	Step string `bson:"step"`
	// Point is the source's latest optime once writes stopped: the destination has every event up
	// to it when the commit completes.
	Point primitive.Timestamp `bson:"point,omitempty"`
	// SourceBlocked is set once the source's user writes are blocked (write blocking on).
	SourceBlocked bool `bson:"sourceBlocked,omitempty"`
	// Restored lists the index settings put back on the destination, "<ns> <index>: <what>".
	Restored    []string  `bson:"restored,omitempty"`
	CommittedAt time.Time `bson:"committedAt,omitempty"`
	// DestinationPoint is the destination's time when it became writable: /reverse applies its
	// events from there.
	DestinationPoint primitive.Timestamp `bson:"destinationPoint,omitempty"`
	// Failure says why the last commit did not complete (the sync is then RUNNING again).
	Failure string `bson:"failure,omitempty"`
	// FailedAttempts counts the current step's attempts that failed in a row; the commit fails
	// once a step reaches the coordinator's bound.
	FailedAttempts int `bson:"failedAttempts,omitempty"`
}

// Commit steps, in order.
const (
	CommitStepBlock    = "block"    // block writes on the source (write blocking on), then take the commit point
	CommitStepCatchUp  = "catchUp"  // the applier applies every event up to the commit point
	CommitStepRestore  = "restore"  // put back the index settings the sync left out
	CommitStepVerify   = "verify"   // compare source and destination (verification enabled)
	CommitStepUnblock  = "unblock"  // lift the destination's write block
	CommitStepFinished = "finished" // COMMITTED
	// CommitStepFailing: the commit failed (Failure says why) and its undo runs to its end (the
	// source unblocked, restored index settings deferred again), however often it must be redone,
	// before the sync goes back to RUNNING. Recorded before the undo starts, so that no coordinator
	// runs the failed commit's steps again once the source may take writes.
	CommitStepFailing = "failing"
	CommitStepFailed  = "failed" // back to RUNNING; Failure says why
)

// Verification is the embedded verifier's result.
type Verification struct {
	// Phase is "not started", "in progress", "passed" or "failed".
	Phase                string    `bson:"phase"`
	StartedAt            time.Time `bson:"startedAt,omitempty"`
	FinishedAt           time.Time `bson:"finishedAt,omitempty"`
	Namespaces           int       `bson:"namespaces"`
	DifferentNamespaces  int       `bson:"differentNamespaces"`
	SourceDocuments      int64     `bson:"sourceDocuments"`
	DestinationDocuments int64     `bson:"destinationDocuments"`
	DocumentsCompared    int64     `bson:"documentsCompared"`
	// Differences describes the first differences found, one line each.
	Differences []string `bson:"differences,omitempty"`
}

// Verification phases.
const (
	VerificationInProgress = "in progress"
	VerificationPassed     = "passed"
	VerificationFailed     = "failed"
)

// StateError says a lifecycle call is not allowed in the sync's current state; nothing was changed.
type StateError struct {
	Call  string // "start", "pause", ...
	State string // the state the sync was in
}

func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s: the sync is %s, and %s is only allowed while it is %s",
		e.Call, e.State, e.Call, allowedIn[e.Call])
}

// allowedIn is mongosync's table of which call each state allows (progress is always allowed).
var allowedIn = map[string]string{
	"start":   StateIdle,
	"pause":   StateRunning,
	"resume":  StatePaused,
	"commit":  StateRunning,
	"reverse": StateCommitted,
}

// transition moves the sync from state from to to with update's other fields, in one conditional
// update, so that of two racing calls on different nodes exactly one wins. A sync in another state
// is a *StateError naming it.
func (m *DB) transition(ctx context.Context, call, from, to string, set, unset bson.D, dates ...string) error {
	update := bson.D{{Key: "$set", Value: append(bson.D{{Key: "state", Value: to}}, set...)}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	if len(dates) > 0 {
		cd := bson.D{}
		for _, f := range dates {
			cd = append(cd, bson.E{Key: f, Value: true})
		}
		update = append(update, bson.E{Key: "$currentDate", Value: cd})
	}
	res, err := m.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: m.SyncID}, {Key: "state", Value: from}}, update)
	if err != nil {
		return fmt.Errorf("%s: updating sync %q: %w", call, m.SyncID, err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	s, err := m.Sync(ctx)
	if err != nil {
		return err
	}
	return &StateError{Call: call, State: s.State}
}

// Start moves the sync from IDLE to RUNNING in its first phase, with its options. Any node may do it
// (it needs no lease: the state condition makes it happen once); the coordinator then does the work.
func (m *DB) Start(ctx context.Context, opts Options) error {
	return m.transition(ctx, "start", StateIdle, StateRunning,
		bson.D{{Key: "phase", Value: PhaseCatalog}, {Key: "options", Value: opts}}, nil, "startedAt")
}

// Pause moves a RUNNING sync to PAUSED: workers hand back their partitions and the applier stops
// after the batches in flight.
func (m *DB) Pause(ctx context.Context) error {
	return m.transition(ctx, "pause", StateRunning, StatePaused, nil, nil, "pausedAt")
}

// Resume moves a PAUSED sync back to RUNNING, where it continues from its checkpoints.
func (m *DB) Resume(ctx context.Context) error {
	return m.transition(ctx, "resume", StatePaused, StateRunning, nil, nil, "resumedAt")
}

// RequestCommit moves a RUNNING sync to COMMITTING; the coordinator carries the commit out.
func (m *DB) RequestCommit(ctx context.Context) error {
	// A new commit record, field by field: a whole-document $set would conflict with the
	// $currentDate that stamps it with the destination's clock.
	return m.transition(ctx, "commit", StateRunning, StateCommitting,
		bson.D{{Key: "commit.step", Value: CommitStepBlock}, {Key: "commit.sourceBlocked", Value: false}},
		bson.D{{Key: "commit.point", Value: ""}, {Key: "commit.restored", Value: ""}, {Key: "commit.committedAt", Value: ""},
			{Key: "commit.destinationPoint", Value: ""}, {Key: "commit.failure", Value: ""},
			{Key: "commit.failedAttempts", Value: ""}},
		"commit.requestedAt")
}

// RequestReverse moves a COMMITTED sync to REVERSING; the coordinator swaps the direction.
func (m *DB) RequestReverse(ctx context.Context) error {
	return m.transition(ctx, "reverse", StateCommitted, StateReversing, nil, nil, "reverseRequestedAt")
}
